// A reactor that busy-polls (io_reactor::config::busy_poll) serves sessions like any other
// and spins only while traffic is dense: once it stops, every I/O thread sleeps again.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "actors/io.hpp"
#include "actors/session_server.hpp"
#include "support/session_fixture.hpp"
#include "transport/tcp_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// The scheduler states ('R', 'S', …) of this process's threads named `vox.io`.
std::string io_thread_states() {
  std::string out;
  for (auto& task : std::filesystem::directory_iterator{"/proc/self/task"}) {
    std::ifstream in{task.path() / "stat"};
    std::string stat{std::istreambuf_iterator<char>{in}, {}};
    auto open = stat.find('(');
    auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size())
      continue;
    if (stat.substr(open + 1, close - open - 1) == "vox.io")
      out += stat[close + 2];
  }
  return out;
}

/// True once every `vox.io` thread has been seen asleep in `samples` consecutive looks.
bool io_threads_fall_asleep(int samples, std::chrono::seconds bound) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  int asleep = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto states = io_thread_states();
    bool all = !states.empty() && states.find_first_not_of('S') == std::string::npos;
    asleep = all ? asleep + 1 : 0;
    if (asleep == samples)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{2}); // sampling, not synchronisation
  }
  return false;
}

} // namespace

TEST_CASE("a busy-polling reactor serves calls and its I/O threads sleep once the traffic stops",
          "[actors][io]") {
  actor_fixture f;
  auto window = std::chrono::microseconds{500};
  session_server::config cfg;
  cfg.options = serving(echo_handler());
  cfg.options.io = io_reactor::start(f.sys, io_config(1, io_inline::vox_actors, window));
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  cfg.options.io.reset();

  auto client_options = logless();
  client_options.io = io_reactor::start(f.sys, io_config(1, io_inline::vox_actors, window));
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto s = connect_session(f.sys, *lnk, client_options);
  REQUIRE(s);
  client_options.io.reset();
  f.track(*s);
  caller c{s->root};
  for (uint8_t i = 0; i < 200; ++i) {
    auto r = f.call(c, 7, payload{i});
    REQUIRE(r);
    CHECK(r->ret == payload{0, i});
  }
  REQUIRE(io_thread_states().size() == 2);
  // A loop that kept spinning would stay runnable ('R') for good.
  CHECK(io_threads_fall_asleep(50, std::chrono::seconds{10}));
  // And it wakes up for the next call.
  auto r = f.call(c, 7, payload{9});
  REQUIRE(r);
  CHECK(r->ret == payload{0, 9});
}
