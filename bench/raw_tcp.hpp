// vox-bench: the raw-TCP floor, a blocking ping-pong with vox's u32-LE length framing.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/common.hpp"

namespace voxbench {

/// A listening TCP socket on `host`:`port` (0 = ephemeral), its port in `bound`; -1 and
/// `why` on failure.
int raw_listen(const std::string& host, uint16_t port, uint16_t& bound, std::string& why);

/// A connected blocking TCP_NODELAY socket to `host`:`port`; -1 and `why` on failure.
int raw_connect(const std::string& host, uint16_t port, std::string& why);

/// Writes all `n` bytes to a blocking socket (retrying EINTR); false once it fails.
bool raw_write_all(int fd, const void* p, size_t n);

/// Echoes every length-prefixed frame back, one blocking thread per connection.
class raw_echo_server {
public:
  /// Listens on `host`:`port` (0 = ephemeral); nullptr (and a message on stderr) on failure.
  static std::unique_ptr<raw_echo_server> start(const std::string& host, uint16_t port);
  ~raw_echo_server();

  uint16_t port() const { return port_; }

  /// Stops accepting, shuts every connection down and joins every thread. Idempotent.
  void stop();

private:
  raw_echo_server(int listen_fd, uint16_t port);
  void accept_loop();

  int listen_fd_;
  uint16_t port_;
  std::thread acceptor_;
  std::mutex mtx_;
  bool stopped_ = false;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
};

/// Round trips of 32-byte frames on one blocking TCP_NODELAY socket to `host`:`port`:
/// `t.warmup_s` uncounted, then `t.measure_s` counted. Every echo is checked.
/// Each round trip's time is recorded (p50/p99 in the result).
measurement raw_tcp_ping_pong(const std::string& host, uint16_t port, timing t);

/// The pipelined floor: `depth` 32-byte frames kept in flight on one blocking
/// TCP_NODELAY socket by one thread that tops the window up with one send, then reads
/// whatever has arrived (64 KiB buffer). Every echo is checked to be its frame, in order.
/// Warm-up, counted interval and drain as in the vox rows.
measurement raw_tcp_pipelined(const std::string& host, uint16_t port, int depth, timing t);

} // namespace voxbench
