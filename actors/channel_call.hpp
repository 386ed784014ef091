// The actor a call of a method with channels runs in: event-based, one per call, so that
// its channel ends can wait for items and credit without holding up the connection's
// driver and without a thread of its own.
#pragma once

#include <exception>
#include <functional>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/interfaces.hpp"

namespace vox::detail {

/// Spawns the actor and runs `body(self)` in it. The actor lives while `body` left it
/// waiting for something (a channel request, a behaviour it set). An exception from
/// `body` or from a callback it registered is logged once, naming `method`, and ends the
/// actor; the caller then gets Cancelled (the responder is gone).
void spawn_channel_call(caf::actor_system& sys, log_sink log, std::string method,
                        std::function<void(caf::event_based_actor*)> body);

/// Logs the exception a handler of `method` threw (once; the caller then gets Cancelled,
/// as the handler's responder is gone with it).
void report_handler_exception(const log_sink& log, std::string_view method, const std::exception_ptr& e);

} // namespace vox::detail
