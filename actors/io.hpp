// The I/O reactor sessions use by default: one per actor system, made on first use.
#pragma once

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "transport/io_reactor.hpp"

namespace vox {

/// Which actors an I/O thread runs itself when something it read wakes them.
enum class io_inline {
  /// vox's own actors only (sessions, drivers, keepalives: they never block).
  vox_actors,
  /// vox's own actors, and the application actor a call's Response wakes, for that one
  /// message: the continuation of the call (`request(...).then(...)`) runs where the
  /// Response was read, as a service handler runs where its Call was read. Saves the CAF
  /// worker wake-up per reply; the continuation must not block. Anything else that actor
  /// has queued, and anything it sends to other application actors, goes to the CAF
  /// scheduler. The default.
  reply_handlers,
  /// Also every application actor something on the I/O thread wakes, for as long as it
  /// has messages: saves the CAF worker wake-up of any reply or notification, but an
  /// application actor that blocks or computes for long then delays every link of that
  /// I/O thread.
  all_actors,
};

/// The configuration of a vox reactor with `threads` I/O threads.
/// `busy_poll`: see `io_reactor::config::busy_poll` (0, the default: sleep at once).
io_reactor::config io_config(size_t threads = 1, io_inline policy = io_inline::reply_handlers,
                             std::chrono::microseconds busy_poll = std::chrono::microseconds{0});

/// The reactor shared by every session of `sys` that names none in its options
/// (`io_config()`: one thread, vox actors and reply continuations inline). It lives while a
/// session or a started link uses it; its one thread never grows with the number of links.
io_reactor_ptr default_io_reactor(caf::actor_system& sys);

/// Refuses a blocking vox call (`what`) made on an I/O thread, e.g. from a service handler
/// or a reply continuation: the wait would stop the loop that has to deliver what it waits
/// for (a deadlock until the call's deadline), and every other link of that loop with it.
/// errc::invalid_request there; no error elsewhere.
caf::error refuse_on_io_thread(const char* what);

} // namespace vox
