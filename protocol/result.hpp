// What a call returns on the wire: Result<T, VoxError<E>> (wire-format.md §4).
#pragma once

#include <string>
#include <variant>

#include "protocol/codec.hpp"
#include "protocol/describe.hpp"

namespace vox {

/// Rust `Result<T, E>`: alternative 0 is Ok, 1 is Err (indices, so T and E may coincide).
template <class T, class E>
struct result : std::variant<T, E> {
  using std::variant<T, E>::variant;
  bool is_ok() const { return this->index() == 0; }
  const T& ok() const { return std::get<0>(*this); }
  const E& err() const { return std::get<1>(*this); }
  friend bool operator==(const result&, const result&) = default;
};

template <class T, class E>
result<T, E> make_ok(T value) {
  return result<T, E>{std::in_place_index<0>, std::move(value)};
}
template <class T, class E>
result<T, E> make_err(E error) {
  return result<T, E>{std::in_place_index<1>, std::move(error)};
}

template <class T, class E>
constexpr auto vox_describe(const result<T, E>*) {
  return variant_desc<result<T, E>, 2, 2>{
    "Result", {newtype_variant("Ok", 0), newtype_variant("Err", 1)}, {"T", "E"}};
}

// The runtime's own failure kinds, each a unit variant of VoxError except InvalidPayload.
struct unknown_method {
  friend bool operator==(const unknown_method&, const unknown_method&) = default;
};
struct invalid_payload {
  std::string message;
  friend bool operator==(const invalid_payload&, const invalid_payload&) = default;
};
VOX_TRANSPARENT(invalid_payload, message)
struct cancelled {
  friend bool operator==(const cancelled&, const cancelled&) = default;
};
struct connection_closed {
  friend bool operator==(const connection_closed&, const connection_closed&) = default;
};
struct session_shutdown {
  friend bool operator==(const session_shutdown&, const session_shutdown&) = default;
};
struct send_failed {
  friend bool operator==(const send_failed&, const send_failed&) = default;
};
struct indeterminate {
  friend bool operator==(const indeterminate&, const indeterminate&) = default;
};

/// Rust `VoxError<E>`: User(E) | UnknownMethod | InvalidPayload(String) | Cancelled
/// | ConnectionClosed | SessionShutdown | SendFailed | Indeterminate, in this order.
template <class E>
struct vox_error : std::variant<E, unknown_method, invalid_payload, cancelled, connection_closed,
                                session_shutdown, send_failed, indeterminate> {
  using std::variant<E, unknown_method, invalid_payload, cancelled, connection_closed,
                     session_shutdown, send_failed, indeterminate>::variant;
  friend bool operator==(const vox_error&, const vox_error&) = default;
};

template <class E>
constexpr auto vox_describe(const vox_error<E>*) {
  return variant_desc<vox_error<E>, 8, 1>{"VoxError",
                                          {newtype_variant("User", 0),
                                           unit_variant("UnknownMethod"),
                                           newtype_variant("InvalidPayload"),
                                           unit_variant("Cancelled"),
                                           unit_variant("ConnectionClosed"),
                                           unit_variant("SessionShutdown"),
                                           unit_variant("SendFailed"),
                                           unit_variant("Indeterminate")},
                                          {"E"}};
}

/// The `ret` payload of a RequestResponse for a method returning T with user error E
/// (`never` for infallible methods).
template <class T, class E = never>
using call_result = result<T, vox_error<E>>;

} // namespace vox
