// Monitoring a longer-lived actor from a shorter-lived one.
#pragma once

#include <caf/actor_addr.hpp>

namespace vox::detail {

/// Monitors `whom` and takes the monitor back when `self` ends, however it ends.
///
/// CAF 0.17 keeps a monitor in the observed actor's attachables until *that* actor ends,
/// and the entry holds a weak reference to its observer. An actor's control block and
/// the actor share one allocation, so each dead observer kept its whole actor (a driver:
/// about 2.4 KiB) alive inside the session: a session that opened and closed connections
/// grew by that much per connection until it ended.
template <class Self, class Handle>
void monitor_while_alive(Self* self, const Handle& whom) {
  self->monitor(whom);
  // Runs during self's cleanup, outside its lock; `whom` may be gone by then.
  self->attach_functor([self, addr = whom.address()] { self->demonitor(addr); });
}

} // namespace vox::detail
