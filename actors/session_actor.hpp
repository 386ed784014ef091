// The session actor: owns the conduit, the connection table, the connection-id allocator
// and the acceptor; routes each inbound Message to its connection's driver.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "actors/channel.hpp"
#include "actors/handles.hpp"
#include "actors/interfaces.hpp"
#include "actors/io.hpp"
#include "transport/bare_conduit.hpp"
#include "transport/handshake_exchange.hpp"

namespace vox {

/// How a session behaves; the same struct configures both roles.
struct session_options {
  /// Root settings we announce. The initiator's parity must be Odd for a default Rust
  /// acceptor; an acceptor takes the opposite of the initiator's parity regardless.
  connection_settings settings{parity::odd, 64};
  /// Serves the peer's calls on the root connection (none: every call gets UnknownMethod).
  call_handler root_handler;
  /// Decides the peer's ConnectionOpens (none: every open is rejected).
  connection_acceptor acceptor;
  /// Ping on connection 0 every interval; unset = no keepalive (the reference's default).
  /// A TS peer drops a TCP session that is silent for 30 s: against such peers set it,
  /// e.g. {10 s, 30 s} as vox-testbed does.
  std::optional<keepalive_options> keepalive;
  /// Inbound opens are rejected (without asking the acceptor) while this many virtual
  /// connections, in either direction and pending ones included, are open.
  size_t max_virtual_connections = 16384;
  /// Acceptor: send a random resume key (Rust and TS initiators that resume require one).
  bool resumable = true;
  /// Prologue plus handshake must finish within this time, or the link is aborted.
  std::chrono::milliseconds handshake_timeout{10000};
  /// The I/O threads that serve the session's link (socket links only); none: the actor
  /// system's shared reactor (`default_io_reactor`), one thread for every session.
  io_reactor_ptr io;
  /// Receives diagnostics ("keepalive disabled…", "ProtocolError from peer…"); default:
  /// standard error.
  std::function<void(const std::string&)> log;
};

/// What starting a session gives the application.
struct session_handle {
  session_actor actor;
  connection_handle root; ///< make a `caller` from it to call the peer
  handshake_result handshake;
};

/// One entry of the connection table (session-behaviours.md 16–17).
struct connection_slot {
  bool pending = false; ///< an outbound open waiting for Accept/Reject
  driver_actor driver;  ///< active only
  connection_settings local_settings;
  connection_settings peer_settings;
  call_handler handler; ///< pending only: serves the connection once accepted
  caf::typed_response_promise<connection_handle> open_promise; ///< pending only
  std::shared_ptr<detail::caller_registry> callers;
  std::shared_ptr<detail::channel_context> channels;
};

struct session_state {
  // Not an aggregate: CAF 0.17 would otherwise construct it from the actor pointer.
  session_state() = default;

  handshake_result handshake;
  session_options options;
  std::shared_ptr<bare_conduit> conduit;
  std::map<connection_id, connection_slot> connections;
  /// The connection each live driver serves, by the driver's actor id: a driver's down
  /// message finds its connection without a scan of every connection.
  std::unordered_map<caf::actor_id, connection_id> connection_of_driver;
  connection_id next_connection_id = 1;
  bool root_closed = false; ///< every root caller is gone (behaviour 87)
  bool ended = false;
  keepalive_actor keepalive;
  log_sink log_to; ///< options.log, or standard error

  void log(const std::string& line) const { (*log_to)(line); }
  ~session_state();

  static inline const char* name = "vox.session";
};

using session_pointer = session_actor::stateful_pointer<session_state>;

session_actor::behavior_type session_behavior(session_pointer self, std::shared_ptr<bare_conduit> conduit,
                                              handshake_result handshake, session_options options);

/// Starts a session on a link whose prologue and handshake are done. Never blocks.
/// `link_started`: the link already delivers to a receiver that forwards to the session
/// (an acceptor driven by link events), so the session must not start it again.
session_handle spawn_session(caf::actor_system& sys, link_ptr link, handshake_result handshake,
                             session_options options, bool link_started = false);

/// Where a session with `options` writes its diagnostics.
log_sink log_sink_of(const session_options& options);

/// What a session's options announce in the handshake.
handshake_options handshake_options_of(const session_options& options);

/// Runs the transport prologue (bare) and the handshake as initiator on the calling
/// thread (bounded by `options.handshake_timeout`), then starts the session. On failure
/// the link is aborted and the error says why.
caf::expected<session_handle> connect_session(caf::actor_system& sys, link_ptr link,
                                              session_options options);

/// The acceptor's counterpart of `connect_session`.
caf::expected<session_handle> accept_session(caf::actor_system& sys, link_ptr link,
                                             session_options options);

} // namespace vox
