// Socket pieces shared by the test proxies (cutting_proxy, fault_proxy): loopback
// listening and dialling, blocking full writes, resets, and a tracker of u32-LE framing.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include <poll.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/socket.hpp"

namespace vox::test::proxy {

/// A listening socket on 127.0.0.1 with an ephemeral port (in `port`; 0 on failure).
inline unique_fd listen_loopback(uint16_t& port) {
  unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  port = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd.get(), 16) != 0
      || ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return {};
  port = ntohs(addr.sin_port);
  return fd;
}

/// Nagle's algorithm would hold small frames back for tens of milliseconds.
inline void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A blocking connection to 127.0.0.1:port, or an invalid fd.
inline unique_fd connect_loopback(uint16_t port) {
  unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return {};
  no_delay(fd.get());
  return fd;
}

inline bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    auto w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return false;
    p += w, n -= static_cast<size_t>(w);
  }
  return true;
}

/// Closing `fd` afterwards sends RST instead of FIN.
inline void reset_on_close(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/// Where one direction's byte stream stands in its framing: every payload, the prologue
/// messages included, has a u32-LE length prefix (wire-format.md §1).
struct framing {
  uint8_t header[4] = {};
  size_t header_have = 0;
  uint64_t body_left = 0;
  uint64_t frames = 0; ///< headers completed so far

  void advance(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (body_left > 0) {
        auto k = static_cast<size_t>(std::min<uint64_t>(n, body_left));
        body_left -= k, p += k, n -= k;
        continue;
      }
      header[header_have++] = *p++;
      --n;
      if (header_have == 4) {
        body_left = uint64_t{header[0]} | uint64_t{header[1]} << 8 | uint64_t{header[2]} << 16
                    | uint64_t{header[3]} << 24;
        header_have = 0;
        ++frames;
      }
    }
  }
  bool between_frames() const { return header_have == 0 && body_left == 0; }
};

/// What every test proxy shares: a listener on 127.0.0.1 and a thread that accepts one
/// connection at a time, dials the upstream port for it and hands both sockets to
/// `serve` until that returns. A derived proxy calls `start` last in its constructor and
/// `stop` first in its destructor (the thread uses its members).
class accept_loop {
public:
  accept_loop() { listener_ = listen_loopback(port_); }
  ~accept_loop() { stop(); }

  accept_loop(const accept_loop&) = delete;
  accept_loop& operator=(const accept_loop&) = delete;

  /// 0 if the proxy could not listen.
  uint16_t port() const { return port_; }

  void stop() {
    stopping_ = true;
    if (thread_.joinable())
      thread_.join();
  }

protected:
  /// `poll_ms`: how soon `stop` is noticed while no connection comes.
  void start(uint16_t upstream_port, int poll_ms, std::function<void(int down, int up)> serve) {
    if (port_ == 0)
      return;
    thread_ = std::thread{[this, upstream_port, poll_ms, serve = std::move(serve)] {
      while (!stopping_) {
        pollfd p{listener_.get(), POLLIN, 0};
        if (::poll(&p, 1, poll_ms) <= 0)
          continue;
        unique_fd down{::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC)};
        if (!down)
          continue;
        unique_fd up = connect_loopback(upstream_port);
        if (!up)
          continue;
        no_delay(down.get());
        serve(down.get(), up.get()); // both close when it returns
      }
    }};
  }

  bool stopping() const { return stopping_; }

private:
  uint16_t port_ = 0;
  unique_fd listener_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace vox::test::proxy
