// How I/O threads end: an actor system waits for them (they run actors and hold what
// holds actors), and nothing but the reactor's users keeps them running. Every wait is
// bounded; nothing sleeps to synchronise.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <sys/socket.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "protocol/error.hpp"
#include "support/started_links.hpp"
#include "transport/io_reactor.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// Waits at most `bound` for the system to count `base` detached threads (its own: CAF
/// runs its timer on one).
bool threads_end(caf::actor_system& sys, size_t base, std::chrono::seconds bound = 10s) {
  auto until = std::chrono::steady_clock::now() + bound;
  while (sys.detached_actors() != base) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    std::this_thread::yield();
  }
  return true;
}

/// A handler that never fires and notes, when the loop lets it go, whether the loop's
/// thread still counted as one of the system's. It holds its loop, as a link does.
class witness final : public io_handler {
public:
  witness(caf::actor_system& sys, std::shared_ptr<io_loop> loop, std::atomic<long>& seen)
    : sys_(sys), loop_(std::move(loop)), seen_(seen) {}
  ~witness() override { seen_.store(static_cast<long>(sys_.detached_actors())); }
  void on_event(io_loop&, uint32_t) override {}
  void on_tick(io_loop&, std::chrono::steady_clock::time_point) override {}

private:
  caf::actor_system& sys_;
  std::shared_ptr<io_loop> loop_;
  std::atomic<long>& seen_;
};

} // namespace

TEST_CASE("an actor system counts the I/O threads of its reactors until they have let go of "
          "everything they hold",
          "[transport][io]") {
  io_reactor::config cfg;
  cfg.backend = GENERATE(io_backend::epoll, io_backend::io_uring);
  cfg.threads = 2;
  caf::actor_system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto base = sys.detached_actors();
  auto io = io_reactor::start(sys, cfg);
  // ~actor_system waits for these, as for detached actors: an I/O thread may be running an
  // actor's last message, or dropping the last reference to one, as the system goes away.
  CHECK(sys.detached_actors() == base + 2);

  // A handler still registered when the reactor goes: destroyed by the loop's thread on
  // its way out, while that thread still counts.
  socket_pair p;
  std::atomic<long> seen{-1};
  auto loop = io->next_loop();
  REQUIRE(loop->add(p.ours.get(), std::make_shared<witness>(sys, loop, seen), false));
  // The last reference is dropped on a loop's own thread, from a task: the hard case,
  // where the reactor cannot join that thread.
  loop->post([last = std::move(io)] {});
  loop.reset();
  REQUIRE(threads_end(sys, base));
  CHECK(seen.load() > static_cast<long>(base));
}

TEST_CASE("a closed link whose peer never closes its side does not keep its reactor's thread",
          "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  auto with_reactor = f.sys.detached_actors();
  started_link s{f};
  byte_buffer payload = pattern(100, 3);
  REQUIRE(s.lnk->send(payload));
  s.lnk->close();
  // The close went out: the peer reads the frame, then EOF. It never closes its own side.
  byte_buffer got(framed(payload).size() + 1);
  size_t have = 0;
  while (have < got.size()) {
    auto n = ::recv(s.theirs(), got.data() + have, got.size() - have, 0);
    if (n <= 0)
      break;
    have += static_cast<size_t>(n);
  }
  CHECK(have == framed(payload).size());
  // Waiting for that peer's EOF (up to the link's 30 s stall timeout) is the link's
  // business while the reactor runs for others; once its users let go, the thread ends.
  s.lnk.reset();
  f.io.reset();
  CHECK(threads_end(f.sys, with_reactor - 1));
  // The link learnt that its loop stopped: its receiver saw the end (and was let go, so a
  // receiver that holds its link does not keep both alive for ever).
  REQUIRE(s.sink->wait_end(0s));
  CHECK(is(s.sink->reason(), errc::link_closed));
  CHECK(s.sink.use_count() == 1);
}
