// Declaring an RPC service once: its name and its methods' names, argument and return types.
// From that one declaration come method ids, argument/return codecs and per-method schemas.
//
//   using calculator = vox::service<"Calculator",
//       vox::method<"add", int64_t(int64_t, int64_t)>,
//       vox::method<"divide", int64_t(int64_t, int64_t), math_error>>;   // Err(User(math_error))
//
// A method's wire form (wire-format.md §4, testbed-service.md §1): `args` is the postcard of
// the argument tuple; `ret` is the postcard of Result<T, VoxError<E>> (`()` for void, E =
// `never` for infallible methods).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "protocol/method_id.hpp"
#include "protocol/result.hpp"
#include "protocol/schema_gen.hpp"

namespace vox {

/// A string usable as a template argument (C++20 class-type non-type parameter).
template <size_t N>
struct fixed_string {
  char data[N]{};
  constexpr fixed_string(const char (&s)[N]) { std::copy_n(s, N, data); }
  constexpr std::string_view view() const { return {data, N - 1}; }
};

template <fixed_string Name, class Signature, class Err = never>
struct method;

/// One method: `Name` is the Rust method name (hashed in kebab case), `Ret(Args...)` its
/// signature, `Err` its user error type.
template <fixed_string Name, class Ret, class... Args, class Err>
struct method<Name, Ret(Args...), Err> {
  static constexpr std::string_view name = Name.view();
  using args_type = std::tuple<Args...>;
  using ok_type = std::conditional_t<std::is_void_v<Ret>, unit, Ret>;
  using error_type = Err;
  using result_type = call_result<ok_type, Err>;
  /// The schema root of the arguments: the n-tuple of the argument types, or `unit` for none.
  using args_schema_root = std::conditional_t<sizeof...(Args) == 0, unit, args_type>;
  /// True if an argument is a channel end (its handler may block on it).
  static constexpr bool has_channels = (schema::detail::channel_end<Args> || ...);
  /// Running it twice is safe (see `idem`).
  static constexpr bool idempotent = false;
  /// Its run outlives the caller's interest (see `persist`).
  static constexpr bool persistent = false;
};

/// `M`, declared idempotent (Rust's `#[vox(idem)]`): after a resume, a call of it whose
/// outcome is unknown may be run again (with fresh channels) instead of failing as
/// Indeterminate (r[retry.duplicate.released.idem], r[retry.channel.volatile.rebinding]).
template <class M>
struct idem : M {
  static constexpr bool idempotent = true;
};

/// `M`, declared persistent (Rust's `#[vox(persist)]`): once started, its handler runs to
/// its answer whatever the caller does. A Cancel from the caller is ignored (the answer
/// still comes and is kept for the call's operation id); a handler that lets go without
/// answering gives `Indeterminate`, not `Cancelled`, since it may have done its work
/// (r[retry.cancel.explicit.persist]). Combines with `idem` either way round.
template <class M>
struct persist : M {
  // As the reference's macro refuses them: a resume ends channels, which a run that must
  // finish cannot survive.
  static_assert(!M::has_channels, "persist methods cannot carry channels (Tx/Rx arguments)");
  static constexpr bool persistent = true;
};

/// The schemas a method attaches to its first call and its first response on a connection.
struct method_schemas {
  schema::schema_payload args;
  schema::schema_payload response;
};

template <fixed_string Name, class... Methods>
struct service {
  static constexpr std::string_view name = Name.view();
  using methods = std::tuple<Methods...>;
  static constexpr size_t method_count = sizeof...(Methods);

  /// The method id of `M` (computed once).
  template <class M>
  static method_id_t id() {
    static const method_id_t value = method_id(name, M::name);
    return value;
  }

  /// The schemas of `M` (generated once from its types).
  template <class M>
  static const method_schemas& schemas() {
    static const method_schemas value{schema::schema_payload_of<typename M::args_schema_root>(),
                                      schema::schema_payload_of<typename M::result_type>()};
    return value;
  }
};

} // namespace vox
