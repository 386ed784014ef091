#include "actors/channel_call.hpp"

#include <exception>

#include <caf/stateful_actor.hpp>

namespace vox::detail {

namespace {

struct channel_call_state {
  // Not an aggregate: CAF 0.17 would otherwise construct it from the actor pointer.
  channel_call_state() = default;
  static inline const char* name = "vox.channel-call"; // "vox.": may run on an I/O thread
};

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

} // namespace

void report_handler_exception(const log_sink& log, std::string_view method, const std::exception_ptr& e) {
  if (log && *log)
    (*log)("handler of " + std::string{method} + " threw: " + what_of(e));
}

void spawn_channel_call(caf::actor_system& sys, log_sink log, std::string method,
                        std::function<void(caf::event_based_actor*)> body) {
  // The state goes in as spawn arguments, not captures: CAF 0.17 dereferences a null
  // argument tuple for function actors spawned without arguments (UB under UBSan).
  sys.spawn(
    [](caf::stateful_actor<channel_call_state>* self, log_sink log, std::string method,
       std::function<void(caf::event_based_actor*)> body) {
      self->set_exception_handler([log, method](caf::scheduled_actor*, std::exception_ptr& e) -> caf::error {
        report_handler_exception(log, method, e);
        return caf::exit_reason::unhandled_exception;
      });
      try {
        body(self);
      } catch (...) {
        report_handler_exception(log, method, std::current_exception());
        self->quit(caf::exit_reason::unhandled_exception);
      }
    },
    std::move(log), std::move(method), std::move(body));
}

} // namespace vox::detail
