// Schemas generated from C++ type declarations (describe.hpp), mirroring the reference's
// `extract_schemas` (wire-format.md §6): a depth-first walk that appends each schema after
// its children, one schema per declaration, one generic schema per container family.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "protocol/codec.hpp"
#include "protocol/describe.hpp"
#include "protocol/schema.hpp"

namespace vox::schema {

namespace detail {

/// The schema primitive `T` is, or nullptr.
template <class T>
constexpr const char* primitive_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<T>) {
    constexpr bool s = std::is_signed_v<T>;
    switch (sizeof(T)) {
      case 1: return s ? "i8" : "u8";
      case 2: return s ? "i16" : "u16";
      case 4: return s ? "i32" : "u32";
      default: return s ? "i64" : "u64";
    }
  } else if constexpr (std::is_same_v<T, float>)
    return "f32";
  else if constexpr (std::is_same_v<T, double>)
    return "f64";
  else if constexpr (std::is_same_v<T, std::string>)
    return "string";
  else if constexpr (std::is_same_v<T, vox::bytes>)
    return "bytes";
  else if constexpr (std::is_same_v<T, vox::payload>)
    return "payload";
  else if constexpr (std::is_same_v<T, vox::never>)
    return "never";
  else if constexpr (std::is_same_v<T, vox::unit>)
    return "unit";
  else
    return nullptr;
}

template <class T>
struct tuple_types;
template <class... Ts>
struct tuple_types<std::tuple<Ts...>> {
  using type = std::tuple<Ts...>;
};
template <class A, class B>
struct tuple_types<std::pair<A, B>> {
  using type = std::tuple<A, B>;
};

/// A channel end (Tx<T>/Rx<T>): it names its direction and element type.
template <class T>
concept channel_end = requires {
  { T::direction } -> std::convertible_to<const char*>;
  typename T::element_type;
};

/// The alternative of generic enum `T` that type parameter `P` is bound to.
template <class T, size_t P>
constexpr size_t param_alternative() {
  constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
  for (size_t i = 0; i < desc.variants.size(); ++i)
    if (desc.variants[i].type_param == static_cast<int>(P))
      return i;
  throw "type parameter bound to no alternative"; // compile-time error when reached
}

} // namespace detail

/// Collects the schemas of one or more root types. Each schema id is emitted once.
class extractor {
public:
  /// Walks `T`, appending every schema it needs that is not there yet; returns its TypeRef.
  template <class T>
  type_ref add();

  const std::vector<schema>& schemas() const { return schemas_; }
  std::vector<schema> take() { return std::move(schemas_); }

private:
  template <class T>
  static std::string key();

  template <class T>
  std::vector<type_ref> args_of();

  template <class T>
  std::vector<field_schema> fields_of();

  template <class T, size_t... Is>
  std::vector<variant_schema> variants_of(std::index_sequence<Is...>);

  std::optional<uint64_t> emitted(const std::string& k) const {
    auto i = emitted_.find(k);
    return i == emitted_.end() ? std::nullopt : std::optional<uint64_t>{i->second};
  }

  uint64_t emit(const std::string& k, std::vector<std::string> params, schema_kind kind) {
    if (auto id = emitted(k))
      return *id;
    schema s{content_hash(kind, params), std::move(params), std::move(kind)};
    emitted_.emplace(k, s.id);
    schemas_.push_back(std::move(s));
    return schemas_.back().id;
  }

  static schema_kind make_kind(schema_kind::tag t, std::vector<type_ref> elements = {}) {
    schema_kind k;
    k.kind = t;
    k.elements = std::move(elements);
    return k;
  }

  std::map<std::string, uint64_t> emitted_;
  std::vector<schema> schemas_;
};

/// The schema list of `T` alone (e.g. the handshake's Message schemas).
template <class T>
std::vector<schema> schemas_of() {
  extractor ex;
  ex.add<T>();
  return ex.take();
}

/// A SchemaPayload rooted at `T` (args tuple of a call, Result of a response).
template <class T>
schema_payload schema_payload_of() {
  extractor ex;
  auto root = ex.add<T>();
  return {ex.take(), std::move(root)};
}

// -- implementation -------------------------------------------------------------------

template <class T>
std::string extractor::key() {
  if constexpr (detail::primitive_name<T>() != nullptr)
    return std::string{"prim:"} + detail::primitive_name<T>();
  else if constexpr (vox::detail::is_vector<T>::value)
    return "generic:vec";
  else if constexpr (vox::detail::is_optional<T>::value)
    return "generic:option";
  else if constexpr (vox::detail::is_map<T>::value)
    return "generic:map";
  else if constexpr (vox::detail::is_tuple<T>::value)
    return "tuple:" + std::to_string(std::tuple_size_v<T>);
  else if constexpr (detail::channel_end<T>)
    return std::string{"generic:"} + T::direction;
  else if constexpr (described<T> && !described_transparent<T>)
    return "decl:" + std::string{vox_describe(static_cast<const T*>(nullptr)).name};
  else
    static_assert(sizeof(T) == 0, "type has no schema: describe it with VOX_STRUCT etc.");
}

template <class T>
std::vector<type_ref> extractor::args_of() {
  if constexpr (vox::detail::is_vector<T>::value || vox::detail::is_optional<T>::value)
    return {add<typename T::value_type>()};
  else if constexpr (detail::channel_end<T>)
    return {add<typename T::element_type>()};
  else if constexpr (vox::detail::is_map<T>::value)
    return {add<typename T::key_type>(), add<typename T::mapped_type>()};
  else if constexpr (vox::detail::is_tuple<T>::value)
    return std::apply([this](auto... xs) { return std::vector<type_ref>{add<decltype(xs)>()...}; },
                      typename detail::tuple_types<T>::type{});
  else if constexpr (described_variant<T>) {
    constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
    return [this]<size_t... Ps>(std::index_sequence<Ps...>) {
      return std::vector<type_ref>{
        add<std::variant_alternative_t<detail::param_alternative<T, Ps>(), std_variant_t<T>>>()...};
    }(std::make_index_sequence<desc.type_params.size()>{});
  } else
    return {};
}

template <class T>
std::vector<field_schema> extractor::fields_of() {
  std::vector<field_schema> out;
  std::apply(
    [&](auto... f) {
      (out.push_back(field_schema{std::string{f.name}, add<typename decltype(f)::member_type>()}),
       ...);
    },
    vox_describe(static_cast<const T*>(nullptr)).fields);
  return out;
}

template <class T, size_t... Is>
std::vector<variant_schema> extractor::variants_of(std::index_sequence<Is...>) {
  constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
  std::vector<variant_schema> out;
  auto one = [&]<size_t I>(std::integral_constant<size_t, I>) {
    using alt = std::variant_alternative_t<I, std_variant_t<T>>;
    constexpr variant_info info = desc.variants[I];
    variant_schema v;
    v.name = std::string{info.name};
    v.index = static_cast<uint32_t>(I);
    if constexpr (info.kind == variant_kind::unit) {
      v.kind = variant_schema::payload_kind::unit;
    } else if constexpr (info.kind == variant_kind::newtype) {
      v.kind = variant_schema::payload_kind::newtype;
      // Walk the bound type even for a type parameter, as the reference does (post-order).
      auto tr = add<alt>();
      if constexpr (info.type_param >= 0)
        tr = type_ref::var(std::string{desc.type_params[info.type_param]});
      v.types.push_back(std::move(tr));
    } else if constexpr (info.kind == variant_kind::struct_) {
      v.kind = variant_schema::payload_kind::struct_;
      v.fields = fields_of<alt>();
    } else {
      v.kind = variant_schema::payload_kind::tuple;
      v.types = args_of<alt>();
    }
    out.push_back(std::move(v));
  };
  (one(std::integral_constant<size_t, Is>{}), ...);
  return out;
}

template <class T>
type_ref extractor::add() {
  if constexpr (described_transparent<T>) {
    return add<typename description_t<T>::member_type>();
  } else {
    const std::string k = key<T>();
    if (auto id = emitted(k))
      return type_ref::concrete(*id, args_of<T>());
    if constexpr (detail::primitive_name<T>() != nullptr) {
      auto kind = make_kind(schema_kind::tag::primitive);
      kind.name = detail::primitive_name<T>();
      return type_ref::concrete(emit(k, {}, std::move(kind)));
    } else if constexpr (std::is_same_v<T, std::vector<uint8_t>>) {
      // The reference describes Vec<u8> as `bytes` only when it is the first Vec of the
      // walk; the bytes schema then stands for the whole Vec family (`extract_schemas`).
      auto kind = make_kind(schema_kind::tag::primitive);
      kind.name = "bytes";
      return type_ref::concrete(emit(k, {}, std::move(kind)));
    } else if constexpr (vox::detail::is_vector<T>::value || vox::detail::is_optional<T>::value) {
      auto args = args_of<T>();
      auto tag = vox::detail::is_vector<T>::value ? schema_kind::tag::list : schema_kind::tag::option;
      return type_ref::concrete(emit(k, {"T"}, make_kind(tag, {type_ref::var("T")})),
                                std::move(args));
    } else if constexpr (detail::channel_end<T>) {
      // r[impl rpc.channel.payload-encoding]
      auto args = args_of<T>();
      auto kind = make_kind(schema_kind::tag::channel, {type_ref::var("T")});
      kind.direction = T::direction;
      return type_ref::concrete(emit(k, {"T"}, std::move(kind)), std::move(args));
    } else if constexpr (vox::detail::is_map<T>::value) {
      auto args = args_of<T>();
      return type_ref::concrete(
        emit(k, {"K", "V"},
             make_kind(schema_kind::tag::map, {type_ref::var("K"), type_ref::var("V")})),
        std::move(args));
    } else if constexpr (vox::detail::is_tuple<T>::value) {
      auto args = args_of<T>();
      std::vector<std::string> params;
      std::vector<type_ref> elements;
      for (size_t i = 0; i < args.size(); ++i) {
        params.push_back("T" + std::to_string(i));
        elements.push_back(type_ref::var(params.back()));
      }
      return type_ref::concrete(
        emit(k, std::move(params), make_kind(schema_kind::tag::tuple, std::move(elements))),
        std::move(args));
    } else if constexpr (described_struct<T>) {
      auto kind = make_kind(schema_kind::tag::struct_);
      kind.name = std::string{vox_describe(static_cast<const T*>(nullptr)).name};
      kind.fields = fields_of<T>();
      return type_ref::concrete(emit(k, {}, std::move(kind)));
    } else if constexpr (described_enum<T>) {
      constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
      auto kind = make_kind(schema_kind::tag::enum_);
      kind.name = std::string{desc.name};
      for (size_t i = 0; i < desc.variants.size(); ++i)
        kind.variants.push_back(variant_schema{std::string{desc.variants[i]},
                                               static_cast<uint32_t>(i),
                                               variant_schema::payload_kind::unit,
                                               {},
                                               {}});
      return type_ref::concrete(emit(k, {}, std::move(kind)));
    } else if constexpr (described_variant<T>) {
      constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
      auto kind = make_kind(schema_kind::tag::enum_);
      kind.name = std::string{desc.name};
      kind.variants
        = variants_of<T>(std::make_index_sequence<std::variant_size_v<std_variant_t<T>>>{});
      auto args = args_of<T>();
      std::vector<std::string> params;
      for (auto p : desc.type_params)
        params.emplace_back(p);
      return type_ref::concrete(emit(k, std::move(params), std::move(kind)), std::move(args));
    } else {
      static_assert(sizeof(T) == 0, "type has no schema: describe it with VOX_STRUCT etc.");
    }
  }
}

} // namespace vox::schema
