// THE message protocol between vox-caf's actors: who sends what to whom, in one place.
//
//   link (its I/O thread) ──inbound_msg / link_down_msg──▶ session ──message──▶ driver (one per connection)
//   link (its I/O thread) ──message (Request, Channel; session idle)──▶ driver   (inbound_routes)
//   session, driver, sending channel end ──bare_conduit::send──▶ link (queued; never blocks)
//   caller guard ──caller_dropped_msg──▶ session        keepalive ──keepalive_timeout_msg──▶ session
//   session ──pong_atom, nonce──▶ keepalive             session ──connection_closed_msg──▶ driver
//   channel end ──channel_credit_atom / channel_recv_atom──▶ driver ──credit / channel_batch──▶ end's actor
//   channel end ──channel_control_msg──▶ driver (close, reset, release)
//   link (when_drained, any thread) ──link_drained_atom──▶ driver (soft backpressure over)
//   resume_session / session_server / reconnector ──resume_msg──▶ session ──resumed_msg──▶ driver
//   session ──message / connection_closed_msg──▶ splice (proxy.hpp), in place of a driver;
//   the splice sends on the other connection's conduit; sessions monitor it (splice_msg)
//   A call of a method with channels runs in a `vox.channel-call` actor (channel_call.hpp):
//   an untyped event-based actor that only awaits the answers to its channel requests.
//
// Concurrency model (the README's "Threads and shared state" says the same at length):
// - Threads: the application's CAF workers; vox's I/O threads (io_reactor, one by default
//   per actor system, never one per link), which accept, run session_server's handshakes,
//   read, frame and decode, and run the session and drivers a frame wakes (they are CAF
//   execution units), and by default the continuation of a call whose Response they read
//   (io_inline::reply_handlers, one message of that application actor); a watchdog per blocking connect_session/accept_session/resume_session;
//   a detached reconnector per resumable initiator while it reconnects. Nothing
//   else: a call of a method with channels runs in an event-based actor, and peer input
//   never starts a thread. Over a memory link the peer's session and drivers run on the
//   sending actor's worker: every send to a conduit passes the sender's `context()`.
// - Shared between threads: a session's conduit (its link is swapped by a resume, under a
//   mutex), a session's inbound routes (the session writes, its link's input reads; mutex
//   and an atomic handled count, session_input.hpp), a session_registry (mutex), a started link (any thread sends under its mutex; input is
//   touched by its I/O thread only); per connection, its channel_context (an atomic id
//   allocator and closed flag); per channel end, its binding (written once, then read-only)
//   and the caller registry of a connection (mutex). A channel's credit, buffered items
//   and state belong to the connection's driver; an end's local credit and items belong
//   to whichever actor or thread uses the end (one at a time). Everything else belongs to
//   one actor.
// - The session monitors every driver (a driver that dies takes its connection with it,
//   while the session goes on; a link would take the session down too) and every driver
//   monitors its session (a session that ends fails every pending call, which CAF 0.17
//   does not do for a dead actor's promises). Drivers and the keepalive take their
//   monitor back as they end (actors/monitor.hpp): CAF 0.17 would keep it, and with it the
//   dead actor's memory, in the session for the session's whole life.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor_addr.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include "protocol/bytes.hpp"
#include "protocol/message.hpp"
#include "protocol/schema.hpp"
#include "transport/handshake_exchange.hpp"
#include "transport/link.hpp"

namespace vox {

struct incoming_call;
class reply_sink;
class bare_conduit;
namespace detail {
class inbound_routes;
}

/// Serves the calls of one connection (see handles.hpp). Runs inside the connection's
/// driver actor, so it must not block: reply now, or keep the sink and reply later.
using call_handler = std::function<void(incoming_call, reply_sink)>;

/// Where a session's diagnostics go (session_options::log, or standard error); shared
/// with its drivers and the actors that run channel calls.
using log_sink = std::shared_ptr<const std::function<void(const std::string&)>>;

// -- atoms (CAF's own open/close/get/tick/ping/pong/ok atoms are reused) --------------------

/// Asks a session to end gracefully.
using stop_atom = caf::atom_constant<caf::atom("vox_stop")>;
/// Starts an outgoing call on a driver.
using call_atom = caf::atom_constant<caf::atom("vox_call")>;
/// Delivers a handler's reply to its driver.
using reply_atom = caf::atom_constant<caf::atom("vox_reply")>;
/// Cancels an outgoing call by its tag.
using cancel_atom = caf::atom_constant<caf::atom("vox_cancel")>;
/// Asks a driver for the credit of a sending channel end.
using channel_credit_atom = caf::atom_constant<caf::atom("vox_ccred")>;
/// Asks a driver for the items that arrived for a receiving channel end.
using channel_recv_atom = caf::atom_constant<caf::atom("vox_crecv")>;
/// A channel request's deadline passed (driver to itself).
using channel_timeout_atom = caf::atom_constant<caf::atom("vox_ctime")>;
/// The link a driver held calls and credit for is no longer congested (link to driver).
using link_drained_atom = caf::atom_constant<caf::atom("vox_drain")>;
/// A disconnected session's deadline for a resume (session to itself, with a serial).
using resume_deadline_atom = caf::atom_constant<caf::atom("vox_rdead")>;

// -- message structs --------------------------------------------------------------------

/// One Message decoded from the link. Sent by the link's receiver (`session_input`), on
/// the thread that read it. `epoch` names the link it came from: after a resume, what a
/// replaced link still delivers is ignored.
struct inbound_msg {
  vox::message msg;
  uint64_t epoch = 0;
};

/// The link ended: `reason` is empty for a clean end of stream, a decode error when the
/// peer sent a payload that is not a Message, `errc::backpressure` when the peer stopped
/// reading. Sent by the link's receiver.
struct link_down_msg {
  caf::error reason;
  uint64_t epoch = 0;
};

/// Resume a session on a new link whose prologue and handshake (with the session's
/// resume key) are done (session-behaviours.md 38–46). `routes` set: the link already
/// delivers to a `session_input` for this session tagged with `epoch`, on these routes
/// (session_server); none: the session starts it. Answered with ok_atom, or an error
/// (the session then aborts the link and stays as it was).
struct resume_msg {
  link_ptr link;
  handshake_result handshake;
  uint64_t epoch = 0;
  std::shared_ptr<detail::inbound_routes> routes;
};

/// Reconnecting gave up (sent by the session's reconnector); the session ends with it.
struct reconnect_failed_msg {
  caf::error reason;
};

/// The session resumed on a new link: conduit generation `generation`. Sent by the
/// session to every driver before the new link's first Message.
struct resumed_msg {
  uint64_t generation = 0;
  /// What the peer said in the new handshake (behaviour 41).
  bool peer_supports_retry = false;
};

/// All copies of the caller of `id` are gone. Sent by the connection's caller guard.
struct caller_dropped_msg {
  connection_id id = 0;
};

/// No Pong arrived for Ping `nonce` within the timeout. Sent by the keepalive actor.
struct keepalive_timeout_msg {
  uint64_t nonce = 0;
};

/// The connection is gone (closed by either side, or its session ended). Sent by the
/// session to the connection's driver; the driver fails what is pending with `reason`
/// and exits.
struct connection_closed_msg {
  caf::error reason;
  /// Which connection: a splice serves two, possibly of one session.
  connection_id connection = 0;
};

/// A session's answer to a splice_msg (or to the `splice` of an open or accept): from
/// now on it routes every Request and Channel message of `id` to the splice, which sends
/// on `conduit` (conduit generation `generation`). `error` set: nothing was routed (the
/// connection is gone, or the session ended).
struct spliced_msg {
  connection_id id = 0;
  caf::error error;
  std::shared_ptr<bare_conduit> conduit;
  connection_settings local_settings;
  connection_settings peer_settings;
  uint64_t generation = 0;
  /// The session can resume on a new link (bare conduit, resumable): a splice may cut
  /// its link to pass a break on. Otherwise cutting it would end the session.
  bool resumable = false;
};

/// Asks a splice to open a virtual connection on `session` (an untyped handle of a
/// session_actor: that interface is declared further down) and to serve it.
struct splice_open_msg {
  caf::actor session;
  connection_settings settings;
  vox::metadata metadata;
};

/// A splice (proxy.hpp): forwards the Request and Channel messages of two connections to
/// each other, payload bytes untouched (session-behaviours.md §1O).
///   spliced_msg                 from a session: one of our two connections is routed to us
///   message                     from a session: traffic of one of our connections
///   connection_closed_msg       from a session: one of our connections is gone
///   resumed_msg                 from a session: it resumed on a new link
///   splice_open_msg             from the application: open a connection and serve it
///   stop_atom                   from the application: end the splice
/// It exits on the first close, failure or stop; each session monitors it and closes
/// what remains of its side (behaviour 113).
using proxy_actor = caf::typed_actor<caf::reacts_to<spliced_msg>, caf::reacts_to<vox::message>,
                                     caf::reacts_to<connection_closed_msg>, caf::reacts_to<resumed_msg>,
                                     caf::reacts_to<splice_open_msg>, caf::reacts_to<stop_atom>>;

/// Routes connection `id` to `proxy` from the next inbound Message on; the session
/// answers the proxy with spliced_msg. The connection's driver exits (its pending calls
/// fail with errc::connection_closed).
struct splice_msg {
  connection_id id = 0;
  proxy_actor proxy;
};

/// One channel of a call as its driver needs to know it.
struct channel_decl {
  channel_id id = 0;
  bool local_receives = false; ///< we hold the receiving end (the peer sends)
  uint32_t initial_credit = 0; ///< the credit the method declares for it
};

/// What a channel end asks its driver for: credit to send, or the items that arrived.
/// `timeout` bounds the wait (zero: none); the driver answers errc::timeout then, so that
/// no credit or item is ever handed to a requester that stopped waiting.
struct channel_request {
  channel_decl channel;
  std::chrono::milliseconds timeout{0};
  /// The conduit generation the end was bound in: after a resume the id may belong to a
  /// new run of the call, which an end of the old run must not touch.
  uint64_t generation = 0;
};

/// Items for a receiving end, in order; `closed`: the sender closed the channel after them.
struct channel_batch {
  std::vector<payload> items;
  bool closed = false;
};

/// What a channel end tells its driver without waiting for an answer.
struct channel_control_msg {
  enum class kind : uint8_t {
    close,   ///< our sending end is done: ChannelClose goes out
    reset,   ///< either end gives up: ChannelReset goes out
    release, ///< our receiving end is gone: later items are dropped
  };
  channel_decl channel;
  kind what = kind::close;
  vox::metadata metadata;
  uint64_t generation = 0; ///< as in channel_request
};

/// An outgoing call: the driver allocates the request id and answers with the peer's
/// Response, or with an error (errc::connection_closed, errc::session_shutdown, …).
struct outgoing_call {
  method_id_t method_id = 0;
  vox::metadata metadata;
  payload args;
  /// The method's schemas; the args part goes out with the method's first call on this
  /// connection (types the connection already carried are left out). Static storage.
  const schema::schema_payload* args_schemas = nullptr;
  /// Channels bound by these arguments; items may flow once the Call is out.
  std::vector<channel_decl> channels{};
  /// Non-zero: lets the caller cancel the call with (cancel_atom, tag) on the same driver.
  uint64_t cancel_tag = 0;
  /// The conduit generation `channels` were bound in: a call whose channels predate a
  /// resume fails instead of going out with channels the resume ended.
  uint64_t generation = 0;
  /// Where each of `channels`' ids starts in `args` (same order): a call that runs again
  /// after a resume goes out with fresh ids written there.
  std::vector<uint32_t> channel_offsets{};
};

/// What the peer answered to a call.
struct call_response {
  vox::metadata metadata;
  payload ret;
  std::vector<uint8_t> schemas;
};

/// A handler's answer to request `id`.
struct reply_msg {
  request_id id = 0;
  vox::metadata metadata;
  payload ret;
  /// Schemas of the method's Result, sent with its first response on this connection.
  const schema::schema_payload* response_schemas = nullptr;
  /// Which run of request `id` answers (its call_control): after a resume the peer may
  /// send the same request id again, and the answer of the run the resume ended must not
  /// pass for the new one's.
  std::shared_ptr<const void> attempt{};
  /// The handler let go of the call without an answer (its sink is gone): the operation
  /// is released (r[retry.cancel.implicit.volatile]).
  bool released = false;
};

/// The peer broke a protocol rule on a connection (e.g. sent a malformed or repeated
/// schema); the session answers with ProtocolError and ends. Sent by a driver.
struct protocol_violation_msg {
  caf::error reason;
};

/// A request to open a virtual connection (`handler` serves the peer's calls on it).
struct open_request {
  connection_settings settings;
  vox::metadata metadata;
  call_handler handler;
  /// Instead of a driver with `handler`, this splice serves the connection from its
  /// first Message on (connection_splice::open).
  proxy_actor splice{};
};

/// A snapshot of a session's state, for monitoring and tests.
struct session_info {
  vox::parity parity = parity::odd;
  bool initiator = true;
  size_t active_connections = 0;  ///< including the root while it is open
  size_t pending_connections = 0; ///< outbound opens not yet answered
  bool root_closed = false;       ///< every root caller is gone
  caf::actor_addr keepalive;      ///< the keepalive monitor, if the session runs one
  bool connected = true;          ///< false while a resumable session waits for a resume
  uint64_t resumes = 0;           ///< successful resumes so far (the conduit generation)
  /// The current resume key (it changes on every resume); none for a session that
  /// cannot be resumed.
  std::optional<std::array<uint8_t, session_resume_key_size>> resume_key;
  bool peer_supports_retry = false;
  /// The link under the session (link::describe; empty while disconnected), e.g.
  /// "stable over tcp 127.0.0.1:…" for the stable conduit.
  std::string link;
};

struct connection_handle;

// -- actor interfaces ---------------------------------------------------------------------

/// What the keepalive needs of its session: send a Ping, hear about a missed Pong.
/// `session_actor` converts to it.
using keepalive_target
  = caf::typed_actor<caf::reacts_to<caf::ping_atom, uint64_t>, caf::reacts_to<keepalive_timeout_msg>>;

/// The keepalive monitor of one session (behaviours 60–66).
///   (pong_atom, nonce)     from the session: a Pong arrived on the root connection
///   (tick_atom, gen)       from itself: a Ping is due (stale generations are ignored)
///   (timeout_atom, nonce)  from itself: the deadline for the Pong of `nonce`
/// It asks the session to send Pings with (ping_atom, nonce) and reports a missed
/// deadline with keepalive_timeout_msg. It exits when its session does.
using keepalive_actor = caf::typed_actor<caf::reacts_to<caf::pong_atom, uint64_t>,
                                         caf::reacts_to<caf::tick_atom, uint64_t>,
                                         caf::reacts_to<caf::timeout_atom, uint64_t>>;

/// The driver of one connection (root or virtual).
///   message                       from the session, or straight from the link's input when the
///                                 session is idle (inbound_routes): a Request/Channel message for us
///   (call_atom, outgoing_call)    from a caller  → call_response, or an error when the
///                                 connection closes or the session ends first
///   (reply_atom, reply_msg)       from a reply_sink: the handler's answer, when given after
///                                 the handler returned or on another thread (an answer given
///                                 while the driver runs the handler is sent on return)
///   (cancel_atom, tag)            from a caller: cancel the call made with that tag; it
///                                 fails with errc::cancelled and Cancel goes to the peer
///   connection_closed_msg         from the session: the connection is gone
///   (channel_credit_atom, req)    from a sending end → the credit it may use now (≥ 1),
///                                 once the channel's Call is out and the peer allows it
///   (channel_recv_atom, req)      from a receiving end → the items that arrived (≥ 1, or
///                                 the close); credit goes back to the peer as they leave
///   channel_control_msg           from a channel end: close, reset or release it
///   (channel_timeout_atom, id, n) from itself: request n of channel id waited too long
///   link_drained_atom             from the link (`when_drained`): the outbound queue fell
///                                 below its low-water mark; held calls and credit go on
///   resumed_msg                   from the session: it resumed on a new link; schemas are
///                                 forgotten both ways, channels end, held output goes out
using driver_actor
  = caf::typed_actor<caf::reacts_to<vox::message>,
                     caf::replies_to<call_atom, outgoing_call>::with<call_response>,
                     caf::reacts_to<reply_atom, reply_msg>, caf::reacts_to<cancel_atom, uint64_t>,
                     caf::reacts_to<connection_closed_msg>,
                     caf::replies_to<channel_credit_atom, channel_request>::with<uint32_t>,
                     caf::replies_to<channel_recv_atom, channel_request>::with<channel_batch>,
                     caf::reacts_to<channel_control_msg>,
                     caf::reacts_to<channel_timeout_atom, channel_id, uint64_t>,
                     caf::reacts_to<link_drained_atom>, caf::reacts_to<resumed_msg>>;

namespace detail {
struct caller_registry;
} // namespace detail

/// Hands a new session its root connection's driver and caller registry; the session
/// starts reading its link only after this. Sent once, first, by `spawn_session`.
struct attach_root_msg {
  driver_actor driver;
  std::shared_ptr<detail::caller_registry> callers;
  /// Set: the link already delivers to the session, on these routes (see `spawn_session`).
  std::shared_ptr<detail::inbound_routes> routes;
};

/// A session: owns the conduit, the connection table and the id allocator.
///   attach_root_msg                      from spawn_session, first
///   inbound_msg / link_down_msg          from the link's receiver (an I/O thread)
///   (open_atom, open_request)            → connection_handle, or errc::rejected with the
///                                          peer's metadata, or errc::session_shutdown
///   (close_atom, id, metadata)           → ok_atom, or errc::invalid_request
///   caller_dropped_msg                   from a connection's last caller guard
///   (ping_atom, nonce)                   from the keepalive: send Ping on connection 0
///   keepalive_timeout_msg                from the keepalive: end the session
///   protocol_violation_msg               from a driver: ProtocolError, then end
///   stop_atom                            end the session
///   splice_msg                           route a connection to a splice (proxy.hpp)
///   get_atom                             → session_info
///   resume_msg                           from resume_session / session_server / the
///                                          reconnector → ok_atom or an error
///   (resume_deadline_atom, serial)       from itself: no resume in time, end
///   reconnect_failed_msg                 from the reconnector: it gave up, end
using session_actor = caf::typed_actor<
  caf::reacts_to<attach_root_msg>, caf::reacts_to<inbound_msg>, caf::reacts_to<link_down_msg>,
  caf::replies_to<resume_msg>::with<caf::ok_atom>, caf::reacts_to<resume_deadline_atom, uint64_t>,
  caf::reacts_to<reconnect_failed_msg>,
  caf::replies_to<caf::open_atom, open_request>::with<connection_handle>,
  caf::replies_to<caf::close_atom, connection_id, vox::metadata>::with<caf::ok_atom>,
  caf::reacts_to<caller_dropped_msg>, caf::reacts_to<caf::ping_atom, uint64_t>,
  caf::reacts_to<keepalive_timeout_msg>, caf::reacts_to<protocol_violation_msg>,
  caf::reacts_to<stop_atom>, caf::reacts_to<splice_msg>,
  caf::replies_to<caf::get_atom>::with<session_info>>;

} // namespace vox

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::inbound_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::link_down_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::caller_dropped_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::keepalive_timeout_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::connection_closed_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::outgoing_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::channel_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::channel_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::channel_control_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::call_response)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::reply_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::protocol_violation_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::session_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::open_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::attach_root_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::resume_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::reconnect_failed_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::resumed_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::spliced_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::splice_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::splice_open_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::connection_settings)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vox::metadata)
