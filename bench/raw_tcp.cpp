#include "bench/raw_tcp.hpp"
#include "bench/driving.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace voxbench {

namespace {

constexpr size_t max_frame = 64 * 1024;

bool read_all(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    auto r = ::recv(fd, b, n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool to_addr(const std::string& host, uint16_t port, sockaddr_in& a) {
  a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  return ::inet_pton(AF_INET, host.empty() ? "0.0.0.0" : host.c_str(), &a.sin_addr) == 1;
}

uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}

} // namespace

bool raw_write_all(int fd, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    auto r = ::send(fd, b, n, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

int raw_listen(const std::string& host, uint16_t port, uint16_t& bound, std::string& why) {
  sockaddr_in a;
  if (!to_addr(host, port, a)) {
    why = "not an IPv4 address: " + host;
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 64) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    why = "cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    return -1;
  }
  bound = ntohs(a.sin_port);
  return fd;
}

int raw_connect(const std::string& host, uint16_t port, std::string& why) {
  sockaddr_in a;
  if (!to_addr(host, port, a)) {
    why = "not an IPv4 address: " + host;
    return -1;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    why = std::string{"connect: "} + std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    return -1;
  }
  set_nodelay(fd);
  return fd;
}

std::unique_ptr<raw_echo_server> raw_echo_server::start(const std::string& host, uint16_t port) {
  std::string why;
  uint16_t bound = 0;
  int fd = raw_listen(host, port, bound, why);
  if (fd < 0) {
    std::fprintf(stderr, "vox-bench: raw server: %s\n", why.c_str());
    return nullptr;
  }
  std::unique_ptr<raw_echo_server> out{new raw_echo_server(fd, bound)};
  out->acceptor_ = std::thread{[srv = out.get()] { srv->accept_loop(); }};
  return out;
}

raw_echo_server::raw_echo_server(int listen_fd, uint16_t port) : listen_fd_(listen_fd), port_(port) {}

raw_echo_server::~raw_echo_server() { stop(); }

void raw_echo_server::accept_loop() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return; // shut down
    }
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_) {
      ::close(fd);
      return;
    }
    set_nodelay(fd);
    conns_.push_back(fd);
    workers_.emplace_back([fd] {
      // The frame is echoed back with one send, as vox's socket link writes it.
      std::vector<uint8_t> buf(4 + max_frame);
      for (;;) {
        if (!read_all(fd, buf.data(), 4))
          break;
        auto len = load_le32(buf.data());
        if (len > max_frame || !read_all(fd, buf.data() + 4, len) || !raw_write_all(fd, buf.data(), 4 + len))
          break;
      }
      ::shutdown(fd, SHUT_RDWR); // closed by stop(), which owns the descriptor
    });
  }
}

void raw_echo_server::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return;
    stopped_ = true;
    for (int fd : conns_)
      ::shutdown(fd, SHUT_RDWR); // wakes the worker's blocking recv
  }
  ::shutdown(listen_fd_, SHUT_RDWR); // wakes accept (EINVAL on Linux)
  if (acceptor_.joinable())
    acceptor_.join();
  for (auto& w : workers_)
    w.join();
  for (int fd : conns_)
    ::close(fd);
  ::close(listen_fd_);
}

namespace {

/// A connected blocking TCP_NODELAY socket; a stuck server fails the row (5 s receive
/// timeout) instead of hanging the run.
int connect_raw(const std::string& host, uint16_t port, std::string& why) {
  int fd = raw_connect(host, port, why);
  if (fd < 0)
    return -1;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

} // namespace

measurement raw_tcp_ping_pong(const std::string& host, uint16_t port, timing t) {
  std::string why;
  int fd = connect_raw(host, port, why);
  if (fd < 0)
    return measurement::failed(why);
  uint8_t frame[4 + payload_size];
  store_le32(frame, payload_size);
  auto body = make_body();
  std::memcpy(frame + 4, body.data(), payload_size);
  uint8_t back[sizeof frame];
  auto round_trip = [&] {
    return raw_write_all(fd, frame, sizeof frame) && read_all(fd, back, sizeof back)
           && std::memcmp(frame, back, sizeof frame) == 0;
  };
  measurement m;
  auto warm_end = clock_type::now() + std::chrono::duration<double>(t.warmup_s);
  while (clock_type::now() < warm_end) {
    if (!round_trip()) {
      ::close(fd);
      return measurement::failed("raw round trip failed during warm-up");
    }
  }
  latency_recorder latency{t.measure_s, 250000};
  auto start = clock_type::now();
  auto end = start + std::chrono::duration<double>(t.measure_s);
  uint64_t n = 0;
  for (auto now = start; now < end;) {
    if (!round_trip()) {
      ::close(fd);
      return measurement::failed("raw round trip failed");
    }
    auto done = clock_type::now();
    latency.add(done - now);
    now = done;
    ++n;
  }
  m.seconds = seconds_since(start);
  ::close(fd);
  m.ok = true;
  m.ops = n;
  m.latency = latency.summary();
  return m;
}

measurement raw_tcp_pipelined(const std::string& host, uint16_t port, int depth, timing t) {
  if (depth < 1)
    return measurement::failed("depth < 1");
  std::string why;
  int fd = connect_raw(host, port, why);
  if (fd < 0)
    return measurement::failed(why);
  constexpr size_t frame_size = 4 + payload_size;
  auto body = make_body();
  // Frame k carries k in its first 8 payload bytes, so each echo is checked to be the
  // right frame in the right order, not just any frame.
  auto fill = [&](uint8_t* f, uint64_t k) {
    store_le32(f, payload_size);
    std::memcpy(f + 4, body.data(), payload_size);
    for (int i = 0; i < 8; ++i)
      f[4 + i] = static_cast<uint8_t>(k >> (8 * i));
  };
  std::vector<uint8_t> out(frame_size * static_cast<size_t>(depth));
  std::vector<uint8_t> in(64 * 1024);
  uint8_t expect[frame_size];
  size_t have = 0;
  uint64_t sent = 0, received = 0;
  bool issuing = true;
  phase_clock clock{t};
  auto fail = [&](std::string what) {
    ::close(fd);
    return measurement::failed(std::move(what));
  };
  for (;;) {
    if (issuing && sent - received < static_cast<uint64_t>(depth)) {
      // Top the window up to `depth` with one send, as a batching writer would.
      size_t k = 0;
      for (; sent - received < static_cast<uint64_t>(depth); ++k)
        fill(out.data() + k * frame_size, sent++);
      if (!raw_write_all(fd, out.data(), k * frame_size))
        return fail("raw pipelined send failed");
    }
    if (sent == received)
      break;
    auto r = ::recv(fd, in.data() + have, in.size() - have, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return fail(r == 0 ? "raw pipelined: the server closed the connection"
                         : std::string{"raw pipelined recv: "} + std::strerror(errno));
    have += static_cast<size_t>(r);
    auto now = clock_type::now();
    size_t used = 0;
    for (; have - used >= frame_size; used += frame_size) {
      fill(expect, received);
      if (std::memcmp(in.data() + used, expect, frame_size) != 0)
        return fail("raw pipelined: an echo was not its frame");
      ++received;
      if (!clock.complete(now))
        issuing = false;
    }
    std::memmove(in.data(), in.data() + used, have - used);
    have -= used;
  }
  ::close(fd);
  return clock.result();
}

} // namespace voxbench
