// Typed postcard encoding (wire-format.md §3.1) for built-in types, standard containers
// and every type declared with describe.hpp.
//
//   byte_buffer b = vox::encode(point{10, -20});          // 14 27
//   caf::expected<point> p = vox::decode<point>(b);       // whole input must be consumed
#pragma once

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"
#include "protocol/describe.hpp"
#include "protocol/postcard.hpp"

namespace vox {

/// `()`: encodes as nothing; the schema primitive `unit`.
using unit = std::tuple<>;

/// The uninhabited type (Rust `Infallible`): nothing can decode into it; schema `never`.
struct never {
  friend bool operator==(const never&, const never&) = default;
};

/// Hook for types with a hand-written codec: specialize with
/// `static void write(postcard::writer&, const T&)`, `static bool read(postcard::reader&, T&)`
/// and `static constexpr size_t min_size` (the fewest bytes any value encodes to).
template <class T>
struct custom_codec;

template <class T>
concept has_custom_codec = requires { custom_codec<T>::min_size; };

namespace detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T>
struct is_map : std::false_type {};
template <class K, class V, class C, class A>
struct is_map<std::map<K, V, C, A>> : std::true_type {};

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};
template <class A, class B>
struct is_tuple<std::pair<A, B>> : std::true_type {};

template <class T>
constexpr bool is_byte_string
  = std::is_same_v<T, std::vector<uint8_t>> || std::is_same_v<T, bytes>;

} // namespace detail

template <class T>
constexpr size_t min_wire_size();

template <class T>
void write_value(postcard::writer& w, const T& v);

template <class T>
bool read_value(postcard::reader& r, T& v);

namespace detail {

template <class Tuple, size_t... Is>
constexpr size_t min_tuple_size(std::index_sequence<Is...>) {
  return (size_t{0} + ... + min_wire_size<std::tuple_element_t<Is, Tuple>>());
}

template <class T, size_t I>
constexpr size_t min_alternative_size() {
  constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
  if constexpr (desc.variants[I].kind == variant_kind::unit)
    return 0; // unit variants carry nothing, whatever the C++ alternative is
  else
    return min_wire_size<std::variant_alternative_t<I, std_variant_t<T>>>();
}

template <class T, size_t... Is>
constexpr size_t min_variant_size(std::index_sequence<Is...>) {
  return 1 + std::min({min_alternative_size<T, Is>()...});
}

template <class T, size_t I>
bool read_alternative(postcard::reader& r, T& v) {
  constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
  auto& slot = as_std_variant(v).template emplace<I>();
  // Unit variants carry no payload whatever the C++ alternative holds.
  if constexpr (desc.variants[I].kind == variant_kind::unit)
    return true;
  else
    return read_value(r, slot);
}

/// Reads an enum's variant index and checks that the enum has it.
template <class T>
bool read_variant_index(postcard::reader& r, uint64_t& index) {
  constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
  if (!r.varint(index))
    return false;
  if (index >= desc.variants.size())
    return r.fail(errc::invalid_tag, std::string{desc.name} + " has no variant " + std::to_string(index));
  return true;
}

template <class T, size_t I>
void write_alternative(postcard::writer& w, const T& v) {
  constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
  if constexpr (desc.variants[I].kind != variant_kind::unit)
    write_value(w, *std::get_if<I>(&as_std_variant(v)));
}

template <class T, size_t... Is>
void write_alternative(postcard::writer& w, const T& v, std::index_sequence<Is...>) {
  using writer_fn = void (*)(postcard::writer&, const T&);
  static constexpr writer_fn table[] = {&write_alternative<T, Is>...};
  table[as_std_variant(v).index()](w, v);
}

template <class T, size_t... Is>
bool read_alternative(postcard::reader& r, T& v, uint64_t index, std::index_sequence<Is...>) {
  using reader_fn = bool (*)(postcard::reader&, T&);
  static constexpr reader_fn table[] = {&read_alternative<T, Is>...};
  return table[index](r, v);
}

} // namespace detail

/// The fewest bytes any value of `T` encodes to; 0 for types such as `()`. Bounds the
/// element counts a decoder accepts before reading any element.
template <class T>
constexpr size_t min_wire_size() {
  if constexpr (has_custom_codec<T>)
    return custom_codec<T>::min_size;
  else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>)
    return std::is_same_v<T, float> ? 4 : std::is_same_v<T, double> ? 8 : 1;
  else if constexpr (std::is_same_v<T, std::string> || detail::is_byte_string<T>
                     || detail::is_optional<T>::value || detail::is_vector<T>::value
                     || detail::is_map<T>::value)
    return 1;
  else if constexpr (std::is_same_v<T, payload>)
    return 4;
  else if constexpr (std::is_same_v<T, never>)
    return 0;
  else if constexpr (detail::is_tuple<T>::value)
    return detail::min_tuple_size<T>(std::make_index_sequence<std::tuple_size_v<T>>{});
  else if constexpr (described_struct<T>)
    return std::apply(
      [](auto... f) { return (size_t{0} + ... + min_wire_size<typename decltype(f)::member_type>()); },
      vox_describe(static_cast<const T*>(nullptr)).fields);
  else if constexpr (described_transparent<T>)
    return min_wire_size<typename description_t<T>::member_type>();
  else if constexpr (described_variant<T>)
    return detail::min_variant_size<T>(
      std::make_index_sequence<std::variant_size_v<std_variant_t<T>>>{});
  else
    static_assert(sizeof(T) == 0, "type has no postcard codec: describe it with VOX_STRUCT etc.");
}

template <class T>
void write_value(postcard::writer& w, const T& v) {
  if constexpr (has_custom_codec<T>) {
    custom_codec<T>::write(w, v);
  } else if constexpr (std::is_same_v<T, bool>) {
    w.u8(v ? 1 : 0);
  } else if constexpr (std::is_integral_v<T>) {
    if constexpr (sizeof(T) == 1)
      w.u8(static_cast<uint8_t>(v));
    else if constexpr (std::is_signed_v<T>)
      w.zigzag(v);
    else
      w.varint(v);
  } else if constexpr (std::is_same_v<T, float>) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    w.fixed_u32(bits);
  } else if constexpr (std::is_same_v<T, double>) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    w.fixed_u64(bits);
  } else if constexpr (std::is_same_v<T, std::string> || detail::is_byte_string<T>) {
    w.length_prefixed(v.data(), v.size());
  } else if constexpr (std::is_same_v<T, payload>) {
    w.opaque(v.data(), v.size());
  } else if constexpr (detail::is_optional<T>::value) {
    w.u8(v ? 1 : 0);
    if (v)
      write_value(w, *v);
  } else if constexpr (detail::is_vector<T>::value || detail::is_map<T>::value) {
    w.varint(v.size());
    for (const auto& x : v) {
      if constexpr (detail::is_map<T>::value) {
        write_value(w, x.first);
        write_value(w, x.second);
      } else {
        write_value(w, x);
      }
    }
  } else if constexpr (detail::is_tuple<T>::value) {
    std::apply([&](const auto&... xs) { (write_value(w, xs), ...); }, v);
  } else if constexpr (described_struct<T>) {
    std::apply([&](auto... f) { (write_value(w, v.*(f.ptr)), ...); },
               vox_describe(static_cast<const T*>(nullptr)).fields);
  } else if constexpr (described_transparent<T>) {
    write_value(w, v.*(vox_describe(static_cast<const T*>(nullptr)).ptr));
  } else if constexpr (described_enum<T>) {
    w.varint(static_cast<uint64_t>(v));
  } else if constexpr (described_variant<T>) {
    const auto& base = as_std_variant(v);
    w.varint(base.index());
    detail::write_alternative(w, v, std::make_index_sequence<std::variant_size_v<std_variant_t<T>>>{});
  } else if constexpr (std::is_same_v<T, never>) {
    // Unreachable for well-formed values: a `never` cannot exist on the wire.
  } else {
    static_assert(sizeof(T) == 0, "type has no postcard codec: describe it with VOX_STRUCT etc.");
  }
}

template <class T>
bool read_value(postcard::reader& r, T& v) {
  if constexpr (has_custom_codec<T>) {
    return custom_codec<T>::read(r, v);
  } else if constexpr (std::is_same_v<T, bool>) {
    uint8_t b = 0;
    if (!r.u8(b))
      return false;
    if (b > 1)
      return r.fail(errc::invalid_tag, "bool byte " + std::to_string(b) + " is neither 0 nor 1");
    v = b == 1;
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    if constexpr (sizeof(T) == 1) {
      uint8_t b = 0;
      if (!r.u8(b))
        return false;
      v = static_cast<T>(b);
      return true;
    } else if constexpr (std::is_signed_v<T>) {
      return r.zigzag_as(v);
    } else {
      return r.varint_as(v);
    }
  } else if constexpr (std::is_same_v<T, float>) {
    uint32_t bits = 0;
    if (!r.fixed_u32(bits))
      return false;
    std::memcpy(&v, &bits, 4);
    return true;
  } else if constexpr (std::is_same_v<T, double>) {
    uint64_t bits = 0;
    if (!r.fixed_u64(bits))
      return false;
    std::memcpy(&v, &bits, 8);
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    byte_span s;
    if (!r.length_prefixed(s, "string"))
      return false;
    v.assign(reinterpret_cast<const char*>(s.data()), s.size());
    if (!postcard::valid_utf8(v))
      return r.fail(errc::invalid_utf8, "string is not valid UTF-8");
    return true;
  } else if constexpr (detail::is_byte_string<T>) {
    byte_span s;
    if (!r.length_prefixed(s, "bytes"))
      return false;
    v.assign(s.begin(), s.end());
    return true;
  } else if constexpr (std::is_same_v<T, payload>) {
    byte_span s;
    if (!r.opaque(s))
      return false;
    v.assign(s.begin(), s.end());
    return true;
  } else if constexpr (detail::is_optional<T>::value) {
    uint8_t tag = 0;
    if (!r.u8(tag))
      return false;
    if (tag == 0) {
      v.reset();
      return true;
    }
    if (tag != 1)
      return r.fail(errc::invalid_tag, "Option tag " + std::to_string(tag) + " is neither 0 nor 1");
    if (!r.enter())
      return false;
    bool ok = read_value(r, v.emplace());
    r.leave();
    return ok;
  } else if constexpr (detail::is_vector<T>::value) {
    using elem = typename T::value_type;
    uint64_t n = 0;
    if (!r.count(n, min_wire_size<elem>(), "sequence") || !r.enter())
      return false;
    v.clear();
    // Safe: count() bounded n by the remaining input.
    v.reserve(min_wire_size<elem>() > 0 ? static_cast<size_t>(n) : 0);
    for (uint64_t i = 0; i < n; ++i)
      if (!read_value(r, v.emplace_back()))
        return false;
    r.leave();
    return true;
  } else if constexpr (detail::is_map<T>::value) {
    using key = typename T::key_type;
    using mapped = typename T::mapped_type;
    uint64_t n = 0;
    if (!r.count(n, min_wire_size<key>() + min_wire_size<mapped>(), "map") || !r.enter())
      return false;
    v.clear();
    for (uint64_t i = 0; i < n; ++i) {
      key k{};
      mapped m{};
      if (!read_value(r, k) || !read_value(r, m))
        return false;
      if (!v.emplace(std::move(k), std::move(m)).second)
        return r.fail(errc::invalid_value, "duplicate map key");
    }
    r.leave();
    return true;
  } else if constexpr (detail::is_tuple<T>::value) {
    return std::apply([&](auto&... xs) { return (read_value(r, xs) && ...); }, v);
  } else if constexpr (described_struct<T>) {
    if (!r.enter())
      return false;
    bool ok = std::apply([&](auto... f) { return (read_value(r, v.*(f.ptr)) && ...); },
                         vox_describe(static_cast<const T*>(nullptr)).fields);
    r.leave();
    return ok;
  } else if constexpr (described_transparent<T>) {
    return read_value(r, v.*(vox_describe(static_cast<const T*>(nullptr)).ptr));
  } else if constexpr (described_enum<T>) {
    uint64_t index = 0;
    if (!detail::read_variant_index<T>(r, index))
      return false;
    v = static_cast<T>(index);
    return true;
  } else if constexpr (described_variant<T>) {
    constexpr auto desc = vox_describe(static_cast<const T*>(nullptr));
    uint64_t index = 0;
    if (!detail::read_variant_index<T>(r, index) || !r.enter())
      return false;
    bool ok = detail::read_alternative(r, v, index,
                                       std::make_index_sequence<desc.variants.size()>{});
    r.leave();
    return ok;
  } else if constexpr (std::is_same_v<T, never>) {
    (void) v;
    return r.fail(errc::invalid_value, "a value of the uninhabited type `never`");
  } else {
    static_assert(sizeof(T) == 0, "type has no postcard codec: describe it with VOX_STRUCT etc.");
  }
}

/// Appends the postcard encoding of `value` to `out`.
template <class T>
void encode_into(byte_buffer& out, const T& value) {
  postcard::writer w{out};
  write_value(w, value);
}

/// The postcard encoding of `value`.
template <class T>
byte_buffer encode(const T& value) {
  byte_buffer out;
  encode_into(out, value);
  return out;
}

/// What `decode` does with input left over after the value.
enum class trailing : uint8_t { reject, allow };

/// Decodes one `T` from `data`; by default the whole input must be consumed.
template <class T>
caf::expected<T> decode(byte_span data, trailing rest = trailing::reject,
                        postcard::read_limits limits = {}) {
  postcard::reader r{data, limits};
  T value{};
  if (!read_value(r, value))
    return r.take_error();
  if (rest == trailing::reject && r.remaining() > 0)
    return make_error(errc::trailing_bytes, std::to_string(r.remaining())
                                              + " bytes left after the value at byte "
                                              + std::to_string(r.position()));
  return value;
}

} // namespace vox
