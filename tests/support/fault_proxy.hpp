// A TCP proxy on 127.0.0.1 that injects, on command, the faults a real network produces:
// delay, a stalled reader, a cut (RST or FIN), one corrupted byte.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

#include <poll.h>

#include "support/proxy_sockets.hpp"

namespace vox::test {

/// Forwards one connection at a time to 127.0.0.1:upstream_port (the next is accepted
/// once the current one ends). Every command may come from any thread and applies to the
/// connection being forwarded (a corruption or a stall also to the ones after it).
class fault_proxy : public proxy::accept_loop {
public:
  enum direction { to_upstream = 0, to_downstream = 1 };

  explicit fault_proxy(uint16_t upstream_port) {
    start(upstream_port, poll_ms * 10, [this](int down, int up) {
      cut_ = cut_kind::none;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        target_.armed = false;
      }
      frames_[0] = frames_[1] = 0;
      last_length_[0] = last_length_[1] = 0;
      bytes_[0] = bytes_[1] = 0;
      ++connections_;
      pump(down, up);
    });
  }

  ~fault_proxy() { stop(); }

  /// Every chunk read waits `d` before it is forwarded (both directions): a slow path.
  void delay(std::chrono::milliseconds d) { delay_ms_ = d.count(); }

  /// Stops reading from the sender of `d`: its peer receives nothing more that way, and
  /// once the socket buffers are full the sender's writes block.
  void stall(direction d) { stalled_[d] = true; }
  void unstall(direction d) { stalled_[d] = false; }

  /// Resets both sockets of the current connection (RST).
  void cut_reset() { cut_ = cut_kind::reset; }

  /// Ends both directions of the current connection with FIN (an orderly shutdown of
  /// the TCP streams, whatever the session above was doing).
  void cut_fin() { cut_ = cut_kind::fin; }

  /// XORs `mask` into byte `offset` of payload number `frame` of direction `d`, counting
  /// from 0 with the prologue as payload 0 and the u32-LE length prefix as bytes 0–3 of
  /// each payload (wire-format.md §1). Once, on the current connection (a new one disarms it).
  void corrupt(direction d, uint64_t frame, uint64_t offset, uint8_t mask = 0xff) {
    std::lock_guard<std::mutex> guard{mtx_};
    target_ = {true, d, frame, offset, mask};
  }

  bool corrupted() const { return corrupted_; }
  size_t connections() const { return connections_; }
  /// Payloads whose length prefix went through in direction `d` on the current connection.
  uint64_t frames(direction d) const { return frames_[d]; }
  uint64_t bytes(direction d) const { return bytes_[d]; }
  /// The length prefix of the last payload that began in direction `d`.
  uint64_t last_length(direction d) const { return last_length_[d]; }

private:
  enum class cut_kind { none, reset, fin };

  struct corruption {
    bool armed = false;
    direction dir = to_upstream;
    uint64_t frame = 0;
    uint64_t offset = 0;
    uint8_t mask = 0;
  };

  /// The position of the next byte in one direction's framing.
  struct position {
    uint64_t frame = 0;
    uint64_t offset = 0; ///< within the payload, its length prefix included
    uint8_t header[4] = {};
    uint64_t length = 0;
  };

  static constexpr int poll_ms = 10;

  /// Applies an armed corruption and advances `pos` over `buf`.
  void pass(direction d, position& pos, uint8_t* buf, size_t n) {
    std::lock_guard<std::mutex> guard{mtx_};
    for (size_t i = 0; i < n; ++i) {
      uint8_t original = buf[i];
      if (target_.armed && target_.dir == d && target_.frame == pos.frame && target_.offset == pos.offset) {
        buf[i] ^= target_.mask;
        target_.armed = false;
        corrupted_ = true;
      }
      if (pos.offset < 4)
        pos.header[pos.offset] = original;
      ++pos.offset;
      if (pos.offset == 4) {
        pos.length = uint64_t{pos.header[0]} | uint64_t{pos.header[1]} << 8 | uint64_t{pos.header[2]} << 16
                     | uint64_t{pos.header[3]} << 24;
        last_length_[d] = pos.length;
        ++frames_[d];
      }
      if (pos.offset >= 4 && pos.offset == 4 + pos.length) {
        ++pos.frame;
        pos.offset = 0;
      }
    }
  }

  void pump(int down, int up) {
    position pos[2];
    bool open[2] = {true, true}; // may we still read from this direction's sender
    uint8_t buf[16384];
    while (!stopping() && (open[0] || open[1])) {
      if (auto c = cut_.exchange(cut_kind::none); c == cut_kind::reset) {
        proxy::reset_on_close(down);
        proxy::reset_on_close(up);
        return;
      } else if (c == cut_kind::fin) {
        ::shutdown(down, SHUT_WR);
        ::shutdown(up, SHUT_WR);
      }
      pollfd ps[2] = {{down, 0, 0}, {up, 0, 0}};
      for (int d = 0; d < 2; ++d)
        if (open[d] && !stalled_[d])
          ps[d].events = POLLIN;
      if (::poll(ps, 2, poll_ms) <= 0)
        continue;
      for (int d = 0; d < 2; ++d) {
        if ((ps[d].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
          continue;
        int from = d == to_upstream ? down : up;
        int to = d == to_upstream ? up : down;
        auto n = ::recv(from, buf, sizeof buf, 0);
        if (n <= 0) {
          // The sender is done: pass its FIN on, keep forwarding the other way.
          ::shutdown(to, SHUT_WR);
          open[d] = false;
          continue;
        }
        if (auto ms = delay_ms_.load(); ms > 0)
          std::this_thread::sleep_for(std::chrono::milliseconds{ms}); // the injected latency
        pass(static_cast<direction>(d), pos[d], buf, static_cast<size_t>(n));
        if (!proxy::write_all(to, buf, static_cast<size_t>(n)))
          return;
        bytes_[d] += static_cast<uint64_t>(n);
      }
    }
  }

  std::atomic<long> delay_ms_{0};
  std::atomic<bool> stalled_[2] = {false, false};
  std::atomic<cut_kind> cut_{cut_kind::none};
  std::mutex mtx_;
  corruption target_;
  std::atomic<bool> corrupted_{false};
  std::atomic<size_t> connections_{0};
  std::atomic<uint64_t> frames_[2] = {0, 0};
  std::atomic<uint64_t> bytes_[2] = {0, 0};
  std::atomic<uint64_t> last_length_[2] = {0, 0};
};

} // namespace vox::test
