// The keepalive monitor: Ping on connection 0 every interval, end the session when a Pong
// does not come back in time (session-behaviours.md 60–66).
#pragma once

#include "actors/handles.hpp"
#include "actors/interfaces.hpp"

namespace vox {

struct keepalive_state {
  // Not an aggregate: CAF 0.17 would otherwise construct it from the actor pointer.
  keepalive_state() = default;

  keepalive_target session;
  keepalive_options options;
  uint64_t next_nonce = 1;           ///< behaviour 61: the first nonce is 1
  std::optional<uint64_t> awaiting;  ///< the nonce whose Pong we wait for
  uint64_t generation = 0;           ///< invalidates ticks scheduled before a Pong

  static inline const char* name = "vox.keepalive";
};

using keepalive_pointer = keepalive_actor::stateful_pointer<keepalive_state>;

/// Pings `session` every `options.ping_interval` and reports a Pong missing for longer
/// than `options.pong_timeout`. Both durations must be non-zero (the session does not
/// spawn it otherwise). Exits when the session does.
keepalive_actor::behavior_type keepalive_behavior(keepalive_pointer self, keepalive_target session,
                                                  keepalive_options options);

} // namespace vox
