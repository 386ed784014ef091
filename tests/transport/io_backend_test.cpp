// The two ways an I/O loop waits for its sockets: io_uring (the loop reads for its links,
// into buffers it lends the kernel) and epoll (the link reads on readiness). Every wait is
// bounded; nothing sleeps to synchronise.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <liburing.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "protocol/error.hpp"
#include "support/started_links.hpp"
#include "transport/framing.hpp"
#include "transport/io_reactor.hpp"
#include "transport/socket_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// What `io_backend::automatic` should give here: io_uring if this process can set up a
/// ring as the loop does (Linux 6.1 or later, not disabled by `kernel.io_uring_disabled`
/// or a seccomp filter, as in a default Docker container).
bool kernel_offers_io_uring() {
  utsname u{};
  int major = 0, minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2)
    return false;
  if (major < 6 || (major == 6 && minor < 1))
    return false;
  io_uring ring{};
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(8, &ring, &params) < 0)
    return false;
  io_uring_queue_exit(&ring);
  return true;
}

} // namespace

TEST_CASE("an I/O loop reads for its links with io_uring where the kernel offers it, and waits "
          "with epoll when told to",
          "[transport][io]") {
  reactor_fixture epoll_only{io_backend::epoll};
  CHECK_FALSE(epoll_only.io->next_loop()->reads_for_handlers());
  // VOX_IO_BACKEND=epoll turns the automatic choice to epoll; restored afterwards.
  std::optional<std::string> saved;
  if (auto* v = std::getenv("VOX_IO_BACKEND"))
    saved = v;
  ::setenv("VOX_IO_BACKEND", "epoll", 1);
  {
    reactor_fixture told{io_backend::automatic};
    CHECK_FALSE(told.io->next_loop()->reads_for_handlers());
  }
  if (saved)
    ::setenv("VOX_IO_BACKEND", saved->c_str(), 1);
  else
    ::unsetenv("VOX_IO_BACKEND");
  if (!kernel_offers_io_uring()) {
    WARN("this process gets no io_uring ring (before Linux 6.1, or disabled): only epoll is checked");
    return;
  }
  reactor_fixture uring{io_backend::io_uring};
  CHECK(uring.io->next_loop()->reads_for_handlers());
  if (saved && *saved == "epoll")
    return;
  reactor_fixture automatic;
  CHECK(automatic.io->next_loop()->reads_for_handlers());
}

// r[verify transport.stream]
TEST_CASE("a backlog larger than every read buffer of the loop arrives whole and in order",
          "[transport][io]") {
  // Four buffers of 4 KiB: the backlog below takes them all in one wait, so the loop's
  // receive runs out of buffers and has to be re-armed, and frames straddle buffers.
  io_reactor::config cfg;
  cfg.backend = GENERATE(io_backend::epoll, io_backend::io_uring);
  cfg.read_buffers = {4, 4096};
  caf::actor_system_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto io = io_reactor::start(sys, cfg);
  socket_pair p;
  auto lnk = make_socket_link(std::move(p.ours), "pair");
  auto sink = std::make_shared<collector>();
  lnk->start(sink, io);
  std::vector<byte_buffer> sent;
  byte_buffer stream;
  for (size_t i = 0; i < 400; ++i) {
    sent.push_back(pattern(1 + (i * 7919) % 6000, static_cast<uint8_t>(i)));
    auto fr = framed(sent.back());
    stream.insert(stream.end(), fr.begin(), fr.end());
  }
  // The loop is held while the socket fills, so the backlog is there at its next wait.
  std::mutex mtx;
  std::condition_variable cv;
  bool held = false, filled = false;
  io->next_loop()->post([&] {
    std::unique_lock<std::mutex> guard{mtx};
    held = true;
    cv.notify_all();
    cv.wait_for(guard, std::chrono::seconds{20}, [&] { return filled; });
  });
  size_t pos = 0;
  {
    std::unique_lock<std::mutex> guard{mtx};
    REQUIRE(cv.wait_for(guard, std::chrono::seconds{20}, [&] { return held; }));
  }
  while (pos < stream.size()) {
    auto n = ::send(p.theirs.get(), stream.data() + pos, stream.size() - pos, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0)
      break; // the socket is full
    pos += static_cast<size_t>(n);
  }
  CHECK(pos > 64 * 1024); // well over the 16 KiB the loop may read in one go
  {
    std::lock_guard<std::mutex> guard{mtx};
    filled = true;
  }
  cv.notify_all();
  REQUIRE(test::write_all(p.theirs.get(), byte_span{stream}.subspan(pos)));
  REQUIRE(sink->wait_frames(sent.size()));
  CHECK(sink->frames() == sent);
  ::shutdown(p.theirs.get(), SHUT_WR);
  REQUIRE(sink->wait_end());
  CHECK_FALSE(sink->reason());
}

TEST_CASE("links that come and go on one I/O loop never see each other's bytes",
          "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  // Each round ends one link while its receive is armed and starts the next, which may
  // take the ended one's place in the loop (and its descriptor number).
  for (uint8_t round = 0; round < 50; ++round) {
    started_link s{f};
    auto payload = pattern(64, round);
    REQUIRE(test::write_all(s.theirs(), framed(payload)));
    REQUIRE(s.sink->wait_frames(1));
    CHECK(s.sink->frames() == std::vector<byte_buffer>{payload});
    s.lnk->abort();
    REQUIRE(s.sink->wait_end());
    CHECK(s.sink->frames().size() == 1);
  }
}
