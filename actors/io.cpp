#include "actors/io.hpp"

#include <cstring>
#include <map>
#include <mutex>

#include <caf/local_actor.hpp>
#include <caf/resumable.hpp>

namespace vox {

io_reactor::config io_config(size_t threads, io_inline policy, std::chrono::microseconds busy_poll) {
  io_reactor::config cfg;
  cfg.threads = threads;
  cfg.busy_poll = busy_poll;
  if (policy == io_inline::all_actors) {
    cfg.run_inline = [](caf::resumable* job) { return dynamic_cast<caf::local_actor*>(job) != nullptr; };
    return cfg;
  }
  // vox's actors never block (handlers are documented not to), so running them where the
  // frame was read saves a thread wake-up per hop; anything else belongs to the scheduler.
  cfg.run_inline = [](caf::resumable* job) {
    auto* actor = dynamic_cast<caf::local_actor*>(job);
    return actor != nullptr && std::strncmp(actor->name(), "vox.", 4) == 0;
  };
  return cfg;
}

io_reactor_ptr default_io_reactor(caf::actor_system& sys) {
  static std::mutex mtx;
  static std::map<caf::actor_system*, std::weak_ptr<io_reactor>> reactors;
  std::lock_guard<std::mutex> guard{mtx};
  std::erase_if(reactors, [&](const auto& kv) { return kv.first != &sys && kv.second.expired(); });
  auto& slot = reactors[&sys];
  if (auto io = slot.lock())
    return io;
  auto io = io_reactor::start(sys, io_config());
  slot = io;
  return io;
}

} // namespace vox
