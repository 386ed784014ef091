#include "actors/keepalive_actor.hpp"

#include <caf/typed_event_based_actor.hpp>

#include "actors/monitor.hpp"

namespace vox {

namespace {

void schedule_ping(keepalive_pointer self) {
  auto& st = self->state;
  self->delayed_send(self, st.options.ping_interval, caf::tick_atom::value, ++st.generation);
}

} // namespace

// r[impl session.keepalive]
keepalive_actor::behavior_type keepalive_behavior(keepalive_pointer self, keepalive_target session,
                                                  keepalive_options options) {
  self->state.session = std::move(session);
  self->state.options = options;
  detail::monitor_while_alive(self, self->state.session);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  schedule_ping(self);
  return {
    [self](caf::pong_atom, uint64_t nonce) {
      auto& st = self->state;
      // Behaviour 62: only the awaited nonce counts; the next Ping is an interval later.
      if (!st.awaiting || *st.awaiting != nonce)
        return;
      st.awaiting.reset();
      schedule_ping(self);
    },
    [self](caf::tick_atom, uint64_t generation) {
      auto& st = self->state;
      if (generation != st.generation || st.awaiting)
        return;
      auto nonce = st.next_nonce++;
      st.awaiting = nonce;
      self->send(st.session, caf::ping_atom::value, nonce);
      self->delayed_send(self, st.options.pong_timeout, caf::timeout_atom::value, nonce);
    },
    [self](caf::timeout_atom, uint64_t nonce) {
      auto& st = self->state;
      if (st.awaiting && *st.awaiting == nonce) {
        // Behaviour 63: the deadline passed; the session ends (even a resumable one, 66).
        self->send(st.session, keepalive_timeout_msg{nonce});
        self->quit();
      }
    },
  };
}

} // namespace vox
