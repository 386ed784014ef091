// Socket pieces shared by the test proxies (cutting_proxy, fault_proxy): loopback
// listening and dialling, blocking full writes, resets, and a tracker of u32-LE framing.
#pragma once

#include <algorithm>
#include <cstdint>

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

} // namespace vox::test::proxy
