// A resumable session's life without a link, and its resume on a new one
// (session-behaviours.md §1E, behaviours 31–46; pitfalls 3, 5, 6).
#include <random>

#include <caf/blocking_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/keepalive_actor.hpp"
#include "actors/session_input.hpp"
#include "actors/backoff.hpp"
#include "actors/session_ops.hpp"

namespace vox::detail {

namespace {

bool is_acceptor(const session_state& st) { return st.handshake.role == session_role::acceptor; }

void stop_keepalive(session_pointer self) {
  auto& st = self->state;
  if (!st.keepalive)
    return;
  self->demonitor(st.keepalive.address());
  self->send_exit(st.keepalive, caf::exit_reason::user_shutdown);
  st.keepalive = nullptr;
}

void stop_reconnector(session_pointer self) {
  auto& st = self->state;
  if (!st.reconnector)
    return;
  self->send_exit(st.reconnector, caf::exit_reason::user_shutdown);
  st.reconnector = nullptr;
}

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

/// Gets the initiator a new link after a break, on a thread of its own while it runs
/// (dialling and the handshake block): attempts with exponential backoff and jitter,
/// bounded by their number and the session's resume deadline (the reference gives up
/// after one failed attempt, pitfall 5). Ends when the session took a link, or tells the
/// session that it gave up.
void reconnect_loop(caf::blocking_actor* self, session_actor session, session_options options,
                    std::chrono::steady_clock::time_point deadline) {
  auto& policy = options.reconnect_policy;
  auto r = detail::with_backoff(
    self, policy.max_attempts, policy.initial_delay, policy.max_delay, deadline,
    [&]() -> caf::expected<void> {
      auto lnk = options.reconnect();
      if (!lnk)
        return std::move(lnk.error());
      return resume_session(self->system(), session, std::move(*lnk), options);
    },
    // The peer or the session refused this session's resume: another link will not change that.
    [](const caf::error& e) { return is(e, errc::resume_refused) || is(e, errc::session_shutdown); });
  if (r.succeeded || r.stopped)
    return;
  auto last = r.last ? describe(r.last) : std::string{"no attempt was made before the deadline"};
  caf::anon_send(session, reconnect_failed_msg{make_error(
                            errc::session_lost, "reconnecting gave up after " + std::to_string(r.attempts)
                                                  + " attempt(s): " + last)});
}

} // namespace

void start_keepalive(session_pointer self) {
  auto& st = self->state;
  // Monitored: a session whose liveness nobody checks any more must not go on silently.
  st.keepalive = self->spawn<caf::monitored>(keepalive_behavior, caf::actor_cast<session_actor>(self),
                                             *st.options.keepalive);
}

bool can_resume(const session_state& st) { return st.options.resumable && st.resume_key && !st.ended; }

void register_resumable(session_pointer self) {
  auto& st = self->state;
  if (is_acceptor(st) && st.options.registry && can_resume(st))
    st.options.registry->insert(*st.resume_key, caf::actor_cast<session_actor>(self));
}

void forget_resumption(session_pointer self) {
  auto& st = self->state;
  if (is_acceptor(st) && st.options.registry && st.resume_key)
    st.options.registry->erase(*st.resume_key, caf::actor_cast<session_actor>(self));
  stop_reconnector(self);
}

// r[impl session.outlives-conduit]
void disconnect(session_pointer self, caf::error reason) {
  auto& st = self->state;
  st.disconnected = true;
  if (auto old = st.conduit->detach())
    old->abort();
  // Behaviour 66: no Pings without a link; a fresh keepalive starts with the new one.
  stop_keepalive(self);
  st.log("link lost (" + (reason ? describe(reason) : std::string{"end of stream"}) + "); waiting up to "
         + millis(st.options.resume_timeout) + " for a resume");
  auto serial = ++st.resume_serial;
  self->delayed_send(self, st.options.resume_timeout, resume_deadline_atom::value, serial);
  // r[impl session.resumption.runtime-managed]
  if (!is_acceptor(st) && st.options.reconnect && !st.reconnector)
    st.reconnector = self->system().spawn<caf::detached>(reconnect_loop, caf::actor_cast<session_actor>(self),
                                                        st.options,
                                                        std::chrono::steady_clock::now() + st.options.resume_timeout);
}

// r[impl session.handshake.resume]
caf::result<caf::ok_atom> resume(session_pointer self, resume_msg& m) {
  auto& st = self->state;
  auto refuse = [&](errc code, const std::string& why) {
    m.link->abort();
    return make_error(code, why);
  };
  if (st.ended)
    return refuse(errc::session_shutdown, "session closed");
  if (!can_resume(st))
    return refuse(errc::resume_refused, "session is not resumable");
  auto& hs = m.handshake;
  // Behaviours 39–40: a resumed session keeps its settings, on both sides.
  if (hs.our_settings != st.handshake.our_settings)
    return refuse(errc::resume_refused, "local root settings changed across session resume");
  if (hs.peer_settings != st.handshake.peer_settings)
    return refuse(errc::resume_refused, "peer root settings changed across session resume");
  if (!st.disconnected) {
    // The peer proved it holds the key, so the link we still have is one it gave up on
    // (half-open after a network change): take the new one.
    st.log("resumed while the old link still looked alive: replacing it");
    if (auto old = st.conduit->detach())
      old->abort();
    stop_keepalive(self);
  }
  // Behaviour 41, and pitfall 6: the acceptor issued a fresh key; the registry and
  // session_info follow it, so the next resume presents the key that works.
  auto old_key = st.resume_key;
  if (hs.session_resume_key)
    st.resume_key = hs.session_resume_key;
  if (is_acceptor(st) && st.options.registry && old_key)
    st.options.registry->rekey(*old_key, *st.resume_key, caf::actor_cast<session_actor>(self));
  st.handshake.peer_supports_retry = hs.peer_supports_retry;
  st.disconnected = false;
  ++st.resume_serial; // the deadline no longer applies
  // Whoever brought the link (the application, or the reconnector's own handshake), a
  // reconnector has nothing left to do.
  stop_reconnector(self);
  st.epoch = m.epoch;
  // What the old link's input still delivers comes to us (and is ignored); the new one
  // hands nothing to a driver before the driver has its resumed_msg (below).
  st.routes->clear();
  bool link_started = m.routes != nullptr;
  st.routes = link_started ? std::move(m.routes) : std::make_shared<detail::inbound_routes>();
  // Started first, so that nothing a driver sends on it is written in blocking mode; what
  // it reads waits in our mailbox behind the resumed_msg we send below.
  if (!link_started)
    m.link->start(std::make_shared<session_input>(caf::actor_cast<session_actor>(self), st.routes, m.epoch),
                  st.options.io);
  auto generation = st.conduit->attach(m.link);
  st.resumes = generation;
  // Behaviour 46, before the new link's first Message reaches anyone. An open still
  // waiting for its answer cannot get it (the old link's input is ignored from here):
  // it fails, and the peer is told to drop the connection if it accepted it.
  std::vector<connection_id> unanswered;
  for (auto& [id, slot] : st.connections) {
    if (slot.pending) {
      slot.open_promise.deliver(make_error(errc::session_lost, "the link broke before the peer answered the open"));
      unanswered.push_back(id);
    } else {
      self->send(slot.driver, resumed_msg{generation, hs.peer_supports_retry});
      if (!slot.spliced)
        st.routes->add(id, slot.driver);
    }
  }
  for (auto id : unanswered) {
    st.connections.erase(id);
    (void) st.conduit->send(message{id, connection_close{}}, self->context());
  }
  if (st.options.keepalive && st.options.keepalive->ping_interval.count() > 0
      && st.options.keepalive->pong_timeout.count() > 0)
    start_keepalive(self);
  st.log("resumed on " + m.link->describe());
  return caf::ok_atom::value;
}

void resume_deadline(session_pointer self, uint64_t serial) {
  auto& st = self->state;
  if (!st.disconnected || serial != st.resume_serial)
    return;
  end_session(self, make_error(errc::session_lost, "no resume within " + millis(st.options.resume_timeout)
                                                     + " after the link broke"));
}

void reconnect_failed(session_pointer self, const caf::error& reason) {
  auto& st = self->state;
  st.reconnector = nullptr;
  if (st.disconnected)
    end_session(self, reason);
}

} // namespace vox::detail
