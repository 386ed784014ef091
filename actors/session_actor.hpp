// The session actor: owns the conduit, the connection table, the connection-id allocator
// and the acceptor; routes each inbound Message the link's input gives it (control, and
// what the input may not hand to a driver itself: inbound_routes) to its connection's driver.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "actors/authorization.hpp"
#include "actors/channel.hpp"
#include "actors/handles.hpp"
#include "actors/interfaces.hpp"
#include "actors/io.hpp"
#include "actors/operation_store.hpp"
#include "actors/session_input.hpp"
#include "actors/session_registry.hpp"
#include "transport/bare_conduit.hpp"
#include "transport/handshake_exchange.hpp"
#include "transport/prologue.hpp"
#include "transport/stable_link.hpp"

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
  /// Acceptor side: asked, before anything runs, about the root connection's first call
  /// and each ConnectionOpen of the peer (README "Deployment and security"). A refused
  /// first call is answered `Err(InvalidPayload("unauthorized: <reason>"))`, and so is
  /// every later root call of the session; a refused open gets a ConnectionReject whose
  /// metadata says `vox-error` = "unauthorized: <reason>". None: everyone is let in.
  authorizer authorize;
  /// Ping on connection 0 every interval; unset = no keepalive (the reference's default).
  /// A TS peer drops a TCP session that is silent for 30 s: against such peers set it,
  /// e.g. {10 s, 30 s} as vox-testbed does.
  std::optional<keepalive_options> keepalive;
  /// Inbound opens are rejected (without asking the acceptor) while this many virtual
  /// connections, in either direction and pending ones included, are open.
  size_t max_virtual_connections = 16384;
  /// Resumption (session-behaviours.md §1E; README "Resumption"), off by default. On: the
  /// acceptor sends a fresh resume key in every handshake (the reference TS client
  /// refuses an acceptor that sends none), an initiator refuses an acceptor that sends
  /// none, and a session whose link breaks waits, disconnected, for a resume on a new
  /// link instead of ending; its connections, pending calls and id allocators survive.
  bool resumable = false;
  /// How long a disconnected session waits for a resume before it ends with
  /// errc::session_lost (the TS reference keeps a dropped session 30 s).
  std::chrono::milliseconds resume_timeout{30000};
  /// Initiator, resumable or over the stable conduit: where a new link comes from after a
  /// break (e.g. dial the same address again); the session then reconnects by itself,
  /// with `reconnect_policy`, until `resume_timeout`.
  /// None: the application resumes with `resume_session`.
  std::function<caf::expected<link_ptr>()> reconnect;
  struct reconnect_backoff {
    /// Attempts before giving up (each: a new link, the prologue, the handshake).
    unsigned max_attempts = 8;
    /// Delay before the second attempt (the first starts at once); doubles per attempt
    /// up to `max_delay`, each drawn uniformly from [delay/2, delay] (jitter).
    std::chrono::milliseconds initial_delay{50};
    std::chrono::milliseconds max_delay{2000};
  } reconnect_policy;
  /// Acceptor, resumable: where the session registers under its resume key so that a
  /// handshake presenting the key resumes it (`session_server` makes one if unset).
  std::shared_ptr<session_registry> registry;
  /// Operation ids and retry (session-behaviours.md §2.9; README "Resumption"), off by
  /// default. On: the handshake says supports_retry, and the peer's calls that carry an
  /// operation id go through a store per connection (a duplicate waits for the first,
  /// a repeat after the answer gets the same answer, the handler runs once). As a caller,
  /// whenever the peer says supports_retry, calls carry operation ids and those pending
  /// at a resume are sent again. Costs, when used: a copy of each call's arguments until
  /// its Response, and a copy of each answer the store keeps (`operation_limits`).
  bool retry = false;
  detail::operation_store::limits operation_limits;
  /// The conduit (wire-format.md §2, §8). An initiator asks for this mode; bare by
  /// default. `stable` wraps every Message in a sequenced, acknowledged frame kept for
  /// replay (transport/stable_link.hpp). An initiator with `reconnect` dials again when
  /// its transport breaks (within `resume_timeout`, with `reconnect_policy`) and the
  /// conduit replays what the peer missed; `session_server` routes the reconnect to it.
  /// Not combined with `resumable` yet.
  conduit_mode conduit = conduit_mode::bare;
  /// Acceptor: a peer may ask for the stable conduit (else it gets a transport reject).
  bool accept_stable = true;
  stable_options stable;
  /// zstd compression of the link (README "Compressed links"), off by default. `prefer`
  /// offers it (initiator) or accepts an offer (acceptor); only a vox-caf peer agrees, and
  /// then everything after the handshake is compressed, under either conduit. `require`
  /// fails the handshake with errc::compression_refused when the peer does not agree. A
  /// memory link never compresses.
  compression_options compression;
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
  /// accept_session resumed an existing session (`root` is then empty).
  bool resumed = false;
  /// Who is at the other end of the link the session started on.
  std::shared_ptr<const link_peer> peer;
};

/// One entry of the connection table (session-behaviours.md 16–17).
struct connection_slot {
  bool pending = false; ///< an outbound open waiting for Accept/Reject
  driver_actor driver;  ///< active only
  connection_settings local_settings;
  connection_settings peer_settings;
  call_handler handler; ///< pending only: serves the connection once accepted
  proxy_actor splice;   ///< pending only: serves it instead of a driver, if set
  bool spliced = false; ///< `driver` is a splice (proxy.hpp), not a driver of ours
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
  /// The active connections the current link's input may hand messages to directly
  /// (every one with a driver of ours; a splice's and a pending one's go through here).
  std::shared_ptr<detail::inbound_routes> routes = std::make_shared<detail::inbound_routes>();
  connection_id next_connection_id = 1;
  bool root_closed = false; ///< every root caller is gone (behaviour 87)
  bool ended = false;
  keepalive_actor keepalive;
  log_sink log_to; ///< options.log, or standard error

  // -- resumption (session_resume.cpp) --
  bool disconnected = false;
  uint64_t epoch = 0;          ///< tag of the current link's input (inbound_msg::epoch)
  uint64_t resume_serial = 0;  ///< names the current resume deadline
  uint64_t resumes = 0;
  std::optional<std::array<uint8_t, session_resume_key_size>> resume_key;
  caf::actor reconnector;      ///< runs while an initiator reconnects by itself

  void log(const std::string& line) const { (*log_to)(line); }
  ~session_state();

  static inline const char* name = "vox.session";
};

using session_pointer = session_actor::stateful_pointer<session_state>;

session_actor::behavior_type session_behavior(session_pointer self, std::shared_ptr<bare_conduit> conduit,
                                              handshake_result handshake, session_options options);

/// Starts a session on a link whose prologue and handshake are done. Never blocks.
/// `started_routes` set: the link already delivers to a `session_input` on these routes
/// (an acceptor driven by link events), so the session must not start it again.
session_handle spawn_session(caf::actor_system& sys, link_ptr link, handshake_result handshake,
                             session_options options,
                             std::shared_ptr<detail::inbound_routes> started_routes = nullptr);

/// Where a session with `options` writes its diagnostics.
log_sink log_sink_of(const session_options& options);

/// What a session's options announce in the handshake.
handshake_options handshake_options_of(const session_options& options);
/// The conduit modes an acceptor with `options` takes.
conduit_mode_set accepted_modes(const session_options& options);

/// Runs the transport prologue (`options.conduit`), the handshake and, for the stable
/// conduit, its hellos as initiator on the calling thread (bounded by
/// `options.handshake_timeout`), then starts the session. On failure the link is aborted
/// and the error says why.
caf::expected<session_handle> connect_session(caf::actor_system& sys, link_ptr link,
                                              session_options options);

/// The acceptor's counterpart of `connect_session`. A Hello that presents a resume key
/// resumes the session `options.registry` knows under it instead: the result then holds
/// only `actor` and `handshake`, and `resumed` is set. An unknown key gets Sorry.
caf::expected<session_handle> accept_session(caf::actor_system& sys, link_ptr link,
                                             session_options options);

/// Resumes `session` (an initiator that is disconnected, or whose link the caller knows
/// is gone) on `link`: the transport prologue and the handshake presenting the session's
/// current resume key, on the calling thread within `options.handshake_timeout`, then
/// the session takes the link (checks 38–40: the settings must not have changed). On
/// failure the link is aborted and the session stays disconnected.
caf::expected<void> resume_session(caf::actor_system& sys, const session_actor& session, link_ptr link,
                                   const session_options& options);

} // namespace vox
