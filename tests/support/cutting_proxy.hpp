// A TCP proxy on 127.0.0.1 that cuts every connection it forwards after a random number
// of bytes: the link faults a real network produces, under the test's control.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include "support/proxy_sockets.hpp"

namespace vox::test {

/// Accepts one connection at a time, dials `upstream_port` for it and forwards bytes both
/// ways until a budget drawn from [min_bytes, max_bytes] is spent. Then it forwards only
/// the part of the current read that fits the budget (so a cut usually falls inside a
/// frame) and resets both sockets (SO_LINGER 0). A connection that ends by itself is
/// closed on the other side too. It follows each direction's u32-LE length-prefixed
/// framing to tell cuts inside a frame from cuts between two.
class cutting_proxy : public proxy::accept_loop {
public:
  cutting_proxy(uint16_t upstream_port, size_t min_bytes, size_t max_bytes, uint32_t seed)
    : budget_(min_bytes, max_bytes), rng_(seed) {
    start(upstream_port, poll_ms, [this](int down, int up) {
      ++connections_;
      pump(down, up);
    });
  }

  ~cutting_proxy() { stop(); }

  size_t connections() const { return connections_; }
  size_t cuts() const { return cuts_; }
  size_t cuts_inside_frames() const { return inside_frames_; }
  uint64_t bytes_forwarded() const { return forwarded_; }

private:
  /// Polls so that `stop` is noticed within a tenth of a second.
  static constexpr int poll_ms = 100;

  /// Forwards until the budget is spent (a cut), either side ends, or stop.
  void pump(int down, int up) {
    uint64_t budget = budget_(rng_);
    uint64_t spent = 0;
    proxy::framing toward_up, toward_down;
    uint8_t buf[16384];
    while (!stopping()) {
      pollfd ps[2] = {{down, POLLIN, 0}, {up, POLLIN, 0}};
      if (::poll(ps, 2, poll_ms) <= 0)
        continue;
      for (int i = 0; i < 2; ++i) {
        if (ps[i].revents == 0)
          continue;
        int from = i == 0 ? down : up;
        int to = i == 0 ? up : down;
        auto& f = i == 0 ? toward_up : toward_down;
        auto n = ::recv(from, buf, sizeof buf, 0);
        if (n <= 0) {
          ::shutdown(to, SHUT_WR);
          return; // both sockets close when the caller's unique_fds go
        }
        auto got = static_cast<size_t>(n);
        if (spent + got >= budget) {
          auto part = static_cast<size_t>(budget - spent);
          proxy::write_all(to, buf, part);
          f.advance(buf, part);
          forwarded_ += part;
          if (!f.between_frames())
            ++inside_frames_;
          ++cuts_;
          proxy::reset_on_close(down);
          proxy::reset_on_close(up);
          return;
        }
        if (!proxy::write_all(to, buf, got))
          return;
        f.advance(buf, got);
        spent += got;
        forwarded_ += got;
      }
    }
  }

  std::uniform_int_distribution<uint64_t> budget_;
  std::mt19937 rng_;
  std::atomic<size_t> connections_{0};
  std::atomic<size_t> cuts_{0};
  std::atomic<size_t> inside_frames_{0};
  std::atomic<uint64_t> forwarded_{0};
};

} // namespace vox::test
