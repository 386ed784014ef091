// The I/O reactor sessions use by default: one per actor system, made on first use.
#pragma once

#include <caf/fwd.hpp>

#include "transport/io_reactor.hpp"

namespace vox {

/// The configuration of vox's reactors: `threads` I/O threads, on which vox's own actors
/// (sessions, drivers, keepalives) run when a frame read there wakes them. Application
/// actors are never run on an I/O thread.
io_reactor::config io_config(size_t threads = 1);

/// The reactor shared by every session of `sys` that names none in its options. It lives
/// while a session or a started link uses it; its one thread never grows with the number
/// of links.
io_reactor_ptr default_io_reactor(caf::actor_system& sys);

} // namespace vox
