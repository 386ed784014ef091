// Declaring a C++ type once — its wire name and its fields or variants in order — so that
// it gets a postcard codec (codec.hpp) and a schema (schema_gen.hpp) from that one place.
//
//   struct point { int32_t x; int32_t y; };
//   VOX_STRUCT(point, "Point", x, y)                  // fields in wire order
//
//   enum class color : uint8_t { red, green, blue };
//   VOX_ENUM(color, "Color", "Red", "Green", "Blue")  // unit variants, indices 0..n-1
//
//   using shape = std::variant<circle, rect, std::tuple<>>;
//   VOX_VARIANT(shape, "Shape", vox::newtype_variant("Circle"),
//               vox::struct_variant("Rect"), vox::unit_variant("Empty"))
//
// The macros define a `vox_describe(const T*)` function that argument-dependent lookup
// finds, so they can be used in the namespace that declares the type (or any namespace
// ADL searches: for a `std::variant` alias, the namespace of one of its alternatives).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>

namespace vox {

/// One field of a described struct: its wire name and member pointer.
template <class Class, class Member>
struct field_desc {
  std::string_view name;
  Member Class::*ptr;
  using member_type = Member;
};

template <class Class, class Member>
constexpr field_desc<Class, Member> field(std::string_view name, Member Class::*ptr) {
  return {name, ptr};
}

/// A struct: fields concatenated in declaration order on the wire.
template <class T, class Fields>
struct struct_desc {
  std::string_view name;
  Fields fields; ///< a std::tuple of field_desc
};

/// A struct that is wire- and schema-transparent: it is its one field (Rust `#[repr(transparent)]`
/// newtypes such as `ConnectionId(u64)`).
template <class T, class Member>
struct transparent_desc {
  Member T::*ptr;
  using member_type = Member;
};

/// A C++ enumeration whose enumerators are the unit variants 0..N-1.
template <class T, size_t N>
struct enum_desc {
  std::string_view name;
  std::array<std::string_view, N> variants;
};

/// How one alternative of a described `std::variant` appears in the schema. The codec
/// does not care: newtype and struct variants both encode as the alternative's value.
enum class variant_kind : uint8_t {
  unit,    ///< no payload; the alternative must be default-constructible and is not encoded
  newtype, ///< payload is the alternative's type
  struct_, ///< payload is the alternative's fields inline (the alternative is a VOX_STRUCT)
  tuple,   ///< payload is the alternative's elements inline (the alternative is a std::tuple)
};

struct variant_info {
  std::string_view name;
  variant_kind kind;
  /// For generic enums (Result<T,E>, VoxError<E>): the alternative is this type parameter
  /// (index into `type_params`), -1 otherwise.
  int type_param = -1;
};

constexpr variant_info unit_variant(std::string_view name) { return {name, variant_kind::unit}; }
constexpr variant_info newtype_variant(std::string_view name, int type_param = -1) {
  return {name, variant_kind::newtype, type_param};
}
constexpr variant_info struct_variant(std::string_view name) {
  return {name, variant_kind::struct_};
}
constexpr variant_info tuple_variant(std::string_view name) { return {name, variant_kind::tuple}; }

/// An enum with data: the alternatives of the `std::variant` (or a class derived from one)
/// in variant-index order. `type_params` is non-empty only for generic enums.
template <class T, size_t N, size_t P = 0>
struct variant_desc {
  std::string_view name;
  std::array<variant_info, N> variants;
  std::array<std::string_view, P> type_params{};
};

// -- detection ---------------------------------------------------------------------------

template <class T>
concept described = requires(const T* p) { vox_describe(p); };

template <class T>
using description_t = decltype(vox_describe(static_cast<const T*>(nullptr)));

template <class D>
struct desc_kind {
  static constexpr int value = 0;
};
template <class T, class F>
struct desc_kind<struct_desc<T, F>> {
  static constexpr int value = 1;
};
template <class T, class M>
struct desc_kind<transparent_desc<T, M>> {
  static constexpr int value = 2;
};
template <class T, size_t N>
struct desc_kind<enum_desc<T, N>> {
  static constexpr int value = 3;
};
template <class T, size_t N, size_t P>
struct desc_kind<variant_desc<T, N, P>> {
  static constexpr int value = 4;
};

template <class T>
concept described_struct = described<T> && desc_kind<description_t<T>>::value == 1;
template <class T>
concept described_transparent = described<T> && desc_kind<description_t<T>>::value == 2;
template <class T>
concept described_enum = described<T> && desc_kind<description_t<T>>::value == 3;
template <class T>
concept described_variant = described<T> && desc_kind<description_t<T>>::value == 4;

/// The std::variant a described variant type is (or derives from).
template <class... Ts>
std::variant<Ts...>& as_std_variant(std::variant<Ts...>& v) {
  return v;
}
template <class... Ts>
const std::variant<Ts...>& as_std_variant(const std::variant<Ts...>& v) {
  return v;
}
template <class T>
using std_variant_t = std::remove_cvref_t<decltype(as_std_variant(std::declval<T&>()))>;

} // namespace vox

// -- declaration macros ------------------------------------------------------------------

#define VOX_PP_CAT_(a, b) a##b
#define VOX_PP_CAT(a, b) VOX_PP_CAT_(a, b)
#define VOX_PP_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N, \
                      ...)                                                                    \
  N
#define VOX_PP_NARGS(...) \
  VOX_PP_NARGS_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)

#define VOX_FIELD_(T, m) ::vox::field(#m, &T::m)
#define VOX_FIELDS_1(T, a) VOX_FIELD_(T, a)
#define VOX_FIELDS_2(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_1(T, __VA_ARGS__)
#define VOX_FIELDS_3(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_2(T, __VA_ARGS__)
#define VOX_FIELDS_4(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_3(T, __VA_ARGS__)
#define VOX_FIELDS_5(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_4(T, __VA_ARGS__)
#define VOX_FIELDS_6(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_5(T, __VA_ARGS__)
#define VOX_FIELDS_7(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_6(T, __VA_ARGS__)
#define VOX_FIELDS_8(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_7(T, __VA_ARGS__)
#define VOX_FIELDS_9(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_8(T, __VA_ARGS__)
#define VOX_FIELDS_10(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_9(T, __VA_ARGS__)
#define VOX_FIELDS_11(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_10(T, __VA_ARGS__)
#define VOX_FIELDS_12(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_11(T, __VA_ARGS__)
#define VOX_FIELDS_13(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_12(T, __VA_ARGS__)
#define VOX_FIELDS_14(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_13(T, __VA_ARGS__)
#define VOX_FIELDS_15(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_14(T, __VA_ARGS__)
#define VOX_FIELDS_16(T, a, ...) VOX_FIELD_(T, a), VOX_FIELDS_15(T, __VA_ARGS__)

/// Declares struct `T` with wire name `Name` and the listed members as its fields, in order.
/// A struct without fields is written `VOX_STRUCT(T, "Name")`.
#define VOX_STRUCT(T, Name, ...)                                                             \
  [[maybe_unused]] constexpr auto vox_describe(const T*) {                                      \
    return ::vox::struct_desc<T, decltype(std::make_tuple(__VA_OPT__(                        \
                                   VOX_PP_CAT(VOX_FIELDS_, VOX_PP_NARGS(__VA_ARGS__))(       \
                                     T, __VA_ARGS__))))>{                                    \
      Name, std::make_tuple(__VA_OPT__(VOX_PP_CAT(VOX_FIELDS_, VOX_PP_NARGS(__VA_ARGS__))(   \
              T, __VA_ARGS__)))};                                                            \
  }

/// Declares struct `T` as transparent: on the wire and in schemas it is its member `m`.
#define VOX_TRANSPARENT(T, m)                                                               \
  [[maybe_unused]] constexpr auto vox_describe(const T*) {                                     \
    return ::vox::transparent_desc<T, decltype(T::m)>{&T::m};                               \
  }

/// Declares enumeration `T` (values 0..N-1 in order) with wire name `Name` and variant names.
#define VOX_ENUM(T, Name, ...)                                                                   \
  [[maybe_unused]] constexpr auto vox_describe(const T*) {                                          \
    constexpr std::string_view names_[] = {__VA_ARGS__};                                         \
    return ::vox::enum_desc<T, std::size(names_)>{Name, std::to_array(names_)};                  \
  }

/// Declares a `std::variant` (or a class derived from one) `T` as an enum with data; one
/// `vox::*_variant(...)` per alternative, in order.
#define VOX_VARIANT(T, Name, ...)                                                                \
  [[maybe_unused]] constexpr auto vox_describe(const T*) {                                          \
    constexpr ::vox::variant_info infos_[] = {__VA_ARGS__};                                      \
    static_assert(std::size(infos_) == std::variant_size_v<::vox::std_variant_t<T>>,             \
                  "one variant_info per alternative");                                           \
    return ::vox::variant_desc<T, std::size(infos_)>{Name, std::to_array(infos_)};               \
  }
