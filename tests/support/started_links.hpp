// Started links for tests: a receiver that collects what a link delivers, socket pairs
// with one raw end, a reactor of their own. Every wait is bounded.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <sys/socket.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <catch2/catch.hpp>

#include "support/transport_helpers.hpp"
#include "transport/framing.hpp"
#include "transport/io_reactor.hpp"
#include "transport/socket_link.hpp"

namespace vox::test {

using namespace std::chrono_literals;

/// Collects what a started link delivers; tests wait on it with a bound.
class collector final : public link_receiver {
public:
  void on_frame(byte_span payload, caf::execution_unit*) override {
    std::lock_guard<std::mutex> guard{mtx_};
    frames_.emplace_back(payload.begin(), payload.end());
    cv_.notify_all();
  }

  void on_end(caf::error reason, caf::execution_unit*) override {
    std::lock_guard<std::mutex> guard{mtx_};
    ++ends_;
    reason_ = std::move(reason);
    cv_.notify_all();
  }

  bool wait_frames(size_t n, std::chrono::seconds bound = 20s) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, bound, [&] { return frames_.size() >= n; });
  }

  bool wait_end(std::chrono::seconds bound = 20s) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, bound, [&] { return ends_ > 0; });
  }

  std::vector<byte_buffer> frames() {
    std::lock_guard<std::mutex> guard{mtx_};
    return frames_;
  }

  caf::error reason() {
    std::lock_guard<std::mutex> guard{mtx_};
    return reason_;
  }

  int ends() {
    std::lock_guard<std::mutex> guard{mtx_};
    return ends_;
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<byte_buffer> frames_;
  int ends_ = 0;
  caf::error reason_;
};

inline byte_buffer pattern(size_t size, uint8_t seed) {
  byte_buffer out(size);
  for (size_t i = 0; i < size; ++i)
    out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

inline byte_buffer framed(byte_span payload) {
  byte_buffer out;
  append_frame_header(out, static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

/// Two connected stream sockets: ours becomes a link, the other stays raw.
struct socket_pair {
  unique_fd ours;
  unique_fd theirs;
  socket_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    ours.reset(fds[0]);
    theirs.reset(fds[1]);
    test::set_recv_bound(theirs.get());
  }
};

struct reactor_fixture {
  explicit reactor_fixture(io_backend backend = io_backend::automatic) {
    io_reactor::config c;
    c.backend = backend;
    io = io_reactor::start(sys, c);
  }
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  io_reactor_ptr io;
};

/// A socket link on our end of a socket pair, started on `f`'s reactor; the test speaks
/// raw bytes on `theirs`.
struct started_link {
  socket_pair p;
  link_ptr lnk;
  std::shared_ptr<collector> sink = std::make_shared<collector>();

  explicit started_link(reactor_fixture& f, link_options opts = {})
    : lnk(make_socket_link(std::move(p.ours), "pair", opts)) {
    lnk->start(sink, f.io);
  }
  int theirs() const { return p.theirs.get(); }
};


} // namespace vox::test
