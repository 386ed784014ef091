// The I/O reactor sessions use by default: one per actor system, made on first use.
#pragma once

#include <caf/fwd.hpp>

#include "transport/io_reactor.hpp"

namespace vox {

/// Which actors an I/O thread runs itself when something it read wakes them.
enum class io_inline {
  /// vox's own actors (sessions, drivers, keepalives): they never block. The default.
  vox_actors,
  /// Also the application's actors, e.g. the caller a Response is for: saves the CAF
  /// worker wake-up per reply (as gRPC's callback API and Cap'n Proto's event loop run
  /// application code on their I/O thread), but an application actor that blocks or
  /// computes for long then delays every link of that I/O thread.
  all_actors,
};

/// The configuration of a vox reactor with `threads` I/O threads.
/// `busy_poll`: see `io_reactor::config::busy_poll` (0, the default: sleep at once).
io_reactor::config io_config(size_t threads = 1, io_inline policy = io_inline::vox_actors,
                             std::chrono::microseconds busy_poll = std::chrono::microseconds{0});

/// The reactor shared by every session of `sys` that names none in its options
/// (`io_config()`: one thread, vox actors inline). It lives while a session or a started
/// link uses it; its one thread never grows with the number of links.
io_reactor_ptr default_io_reactor(caf::actor_system& sys);

} // namespace vox
