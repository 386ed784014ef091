// What applications hold: connection handles, callers, reply sinks, handlers, acceptors.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <variant>

#include <caf/allowed_unsafe_message_type.hpp>

#include "actors/interfaces.hpp"
#include "protocol/message.hpp"
#include "transport/link.hpp"

namespace vox {

namespace detail {
class caller_guard;
struct channel_context;
/// Shared by every copy of a connection_handle: where the connection's one caller guard
/// is found while any caller is alive.
struct caller_registry {
  std::mutex mtx;
  std::weak_ptr<caller_guard> guard;
};
} // namespace detail

/// One connection of a session (the root, id 0, or a virtual one). Copyable; holding a
/// handle does not keep the connection open — callers do (see `caller`).
struct connection_handle {
  connection_id id = 0;
  session_actor session;
  driver_actor driver;
  connection_settings local_settings; ///< what we announced (our parity for request ids)
  connection_settings peer_settings;  ///< what the peer announced
  std::shared_ptr<detail::caller_registry> callers;
  std::shared_ptr<detail::channel_context> channels; ///< binds Tx/Rx arguments of calls
};

/// Makes calls on one connection. Copies share one reference count: when the last caller
/// of a virtual connection goes away the session closes it (ConnectionClose is sent);
/// when the last root caller goes away the root is closed internally and the session ends
/// once no virtual connection remains (rpc.caller.liveness.*).
class caller {
public:
  caller() = default;

  /// The caller of `conn`; shares its reference count with every other live caller of it.
  explicit caller(const connection_handle& conn);

  const connection_handle& connection() const { return conn_; }
  connection_id id() const { return conn_.id; }
  /// Send `(call_atom, outgoing_call)` here with `request(...)` to make a call.
  const driver_actor& driver() const { return conn_.driver; }
  explicit operator bool() const { return guard_ != nullptr; }

  /// Drops this copy (as if it were destroyed).
  void reset() {
    guard_.reset();
    conn_ = {};
  }

private:
  connection_handle conn_;
  std::shared_ptr<detail::caller_guard> guard_;
};

namespace detail {
/// Shared by the driver's record of one inbound call and that call's reply_sink.
struct call_control {
  std::atomic<bool> cancelled{false};
  /// The method's response schemas (static storage) once a typed dispatcher knows the
  /// method: Cancelled answers the driver sends itself carry them, as the reference's do.
  std::atomic<const schema::schema_payload*> response_schemas{nullptr};
  /// The method is declared idempotent (`vox::idem`): a run that gave up may run again.
  std::atomic<bool> idempotent{false};
  /// The method is declared persistent (`vox::persist`): a Cancel does not stop it.
  std::atomic<bool> persistent{false};
};
} // namespace detail

/// A call received by a handler.
struct incoming_call {
  connection_id connection = 0;
  request_id id = 0;
  method_id_t method_id = 0;
  vox::metadata metadata;
  payload args;
  std::vector<uint8_t> schemas;
  /// The actor system of the connection (handlers of channel methods run in it).
  caf::actor_system* system = nullptr;
  /// The session's diagnostics (a handler that throws is reported there).
  log_sink log;
  /// Who called: the address and TLS identity of the session's link when it started
  /// (calls on connections the peer opened, and on the root).
  std::shared_ptr<const link_peer> peer;
};

/// What a call's driver needs to know of its method, beyond its bytes.
struct method_traits {
  bool idempotent = false; ///< `vox::idem`
  bool persistent = false; ///< `vox::persist`
};

/// Answers one incoming call, exactly once (rpc.response.one-per-request). Copies share
/// the answer; the first `reply` wins and later ones are ignored. If every copy is
/// destroyed without a reply, the caller gets `Err(VoxError::Cancelled)`. Thread-safe: a
/// handler may keep it and reply later from any thread.
class reply_sink {
public:
  reply_sink() = default;
  /// `control` is shared with the driver, which raises its flag when the caller cancels.
  reply_sink(driver_actor driver, request_id id, std::shared_ptr<detail::call_control> control = nullptr);

  /// Sends the Response: `ret` is the postcard of `Result<T, VoxError<E>>`; `schemas`
  /// (static storage) describe it and go out with the method's first response.
  void reply(payload ret, vox::metadata md = {},
             const schema::schema_payload* schemas = nullptr) const;

  /// True once a reply was sent (by any copy).
  bool replied() const;

  /// True once the caller cancelled the call (r[rpc.cancel]): it already got
  /// Err(Cancelled), and any reply sent now is ignored. Handlers doing long work poll it.
  /// Never true for a persistent method (its Cancel is ignored).
  bool cancelled() const;

  request_id id() const;

  /// Names the schemas (static storage) of this call's Response, so that the Cancelled
  /// answer sent when no reply comes carries them too, and the method's retry traits
  /// (service_dispatcher does this).
  void describe_response(const schema::schema_payload* schemas, method_traits traits = {}) const;

private:
  struct state;
  std::shared_ptr<state> state_;
};

/// An acceptor's "yes" to an inbound ConnectionOpen.
struct accept_connection {
  connection_settings settings;  ///< our settings for the new connection
  vox::metadata metadata;        ///< sent in ConnectionAccept
  call_handler handler;          ///< serves the new connection (none: UnknownMethod)
  /// Called (inside the session) with the new connection once it is set up.
  std::function<void(const connection_handle&)> on_open;
  /// Instead of a driver with `handler`, this splice serves the connection from its
  /// first Message on (connection_splice::accept).
  proxy_actor splice{};
};

/// An acceptor's "no": the metadata goes into ConnectionReject.
struct reject_connection {
  vox::metadata metadata;
};

/// Decides inbound opens: (connection id, the peer's settings, the peer's metadata).
/// Runs synchronously inside the session actor.
using connection_acceptor = std::function<std::variant<accept_connection, reject_connection>(
  connection_id, const connection_settings&, const vox::metadata&)>;

/// Keepalive on connection 0; disabled when either duration is zero.
struct keepalive_options {
  std::chrono::milliseconds ping_interval{0};
  std::chrono::milliseconds pong_timeout{0};
};

/// `Err(VoxError::Cancelled)`, the answer of a call whose handler never replied; its
/// bytes do not depend on the method's types.
payload cancelled_response();
/// `Err(VoxError::UnknownMethod)`.
payload unknown_method_response();
/// `Err(VoxError::Indeterminate)`: the call may or may not have run, and will not be run
/// again (r[retry.outcome.indeterminate]).
payload indeterminate_response();
/// `Err(VoxError::InvalidPayload(message))`.
payload invalid_payload_response(std::string message);

} // namespace vox

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::connection_handle)
