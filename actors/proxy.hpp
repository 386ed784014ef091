// Splicing two connections (session-behaviours.md §1O): every Request and Channel
// message that arrives on one goes out on the other with its payload bytes untouched,
// request and channel ids unchanged. What a gateway, a mesh hop or a fan-in router is
// made of (apps/vox_gateway.cpp).
#pragma once

#include <optional>

#include <caf/actor_system.hpp>
#include <caf/attachable.hpp>
#include <caf/expected.hpp>

#include "actors/handles.hpp"
#include "actors/interfaces.hpp"

namespace vox {

/// One splice: an actor (`vox.splice`) that serves two connections in place of their
/// drivers. The sessions route to it directly, so a forwarded Message costs the same
/// actor hops as a call served by a handler.
///
/// - Ids pass through, as in the reference: a Call the peer of one connection made goes
///   out as our Call on the other, with the same request id. That needs our parity on
///   the second connection to be the first's peer's parity; `attach` refuses connections
///   for which it is not, and `accept`/`open` choose it.
/// - Schemas: a method's schemas go out with its first Call (and its first Response) on
///   each outgoing connection, taken from what the incoming connection received, each
///   type at most once per connection (§1M behaviours 95–96, 104).
/// - Metadata: entries flagged NO_PROPAGATE are dropped; everything else, flags
///   included, passes unchanged.
/// - Flow control is end to end: GrantCredit, Close, Reset and Cancel cross like any
///   other message, so items in the splice are bounded by the credit the consumer
///   grants, and calls by the max_concurrent_requests each side announced (Calls beyond
///   what the outgoing peer allows wait in the splice, up to what we allowed the caller).
/// - A link break crosses the splice. When a session under it resumes on a new link
///   (bare conduit; the stable conduit's reconnects are invisible here), the splice cuts
///   the other connection's link, so that both peers resume and each ends its channels
///   and sends its pending calls again, as over a direct link. Messages not written
///   yet are dropped then, except Responses; a call sent again is forwarded again, and
///   the callee's answer to the first one still reaches the caller. Schemas start over
///   on each resumed connection. While a side is disconnected, what is forwarded to it
///   waits (at most `max_waiting` Messages). A session that cannot resume ends, and so
///   does the splice; so it does when the other session could not resume to follow.
/// - The splice ends when either connection closes, its session ends, too much waits
///   for a disconnected side, a peer breaks a rule (that peer's session gets a
///   ProtocolError), or `stop()`. Each session then closes what remains of its side:
///   ConnectionClose for a virtual connection, an internal close for a root (behaviour
///   113), so pending calls fail on the callers' side instead of hanging.
///
/// Copies share the splice. Traffic of a connection attached first waits in the splice
/// (at most `max_waiting` Messages, else the splice ends) until the second is attached.
class connection_splice {
public:
  static constexpr size_t max_waiting = 4096;

  connection_splice() = default;

  /// A splice with no connection yet; `log` hears why it ended (default: standard error).
  static connection_splice make(caf::actor_system& sys, std::function<void(const std::string&)> log = {});

  /// Routes `conn` (open, root or virtual) to the splice from its session's next Message
  /// on; calls it made before stay with its driver, which exits. To lose nothing, attach
  /// before the peer can send: a root from `session_server::config::on_session` (before
  /// the session reads), a new connection with `accept` or `open` instead.
  /// Errors (nothing sent): a third connection, or parities that cannot pass ids through.
  caf::expected<void> attach(const connection_handle& conn) const;

  /// An acceptor's answer that makes the splice serve the peer's new connection from its
  /// first Message, with our parity the opposite of `peer`'s (as it must be); `md` goes
  /// into ConnectionAccept as it is.
  caf::expected<accept_connection> accept(const connection_settings& peer, vox::metadata md = {}) const;

  /// Opens a virtual connection on `session` that the splice serves from its first
  /// Message; `settings.parity` is chosen by the splice and `md` loses its NO_PROPAGATE
  /// entries. If the peer rejects it, the splice ends.
  caf::expected<void> open(const session_actor& session, connection_settings settings, vox::metadata md = {}) const;

  /// Ends the splice (both connections close).
  void stop() const;

  const proxy_actor& actor() const { return actor_; }
  explicit operator bool() const { return static_cast<bool>(actor_); }

private:
  /// Checks and records the parity our next connection takes.
  caf::expected<void> claim(parity local) const;

  proxy_actor actor_;
  struct sides;
  std::shared_ptr<sides> sides_;
};

/// Splices two open connections (the reference's proxy_connections): returns the splice,
/// or an error naming why they cannot be spliced (their parities).
caf::expected<connection_splice> proxy_connections(caf::actor_system& sys, const connection_handle& a,
                                                   const connection_handle& b);

namespace detail {
/// Identifies what `connection_splice::attach` leaves on a session; the session detaches
/// it once it has read the splice_msg.
caf::attachable::token splice_guard_token(const proxy_actor& proxy);
} // namespace detail

} // namespace vox
