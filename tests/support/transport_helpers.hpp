// Test helpers for links: raw socket peers, peer threads that always join, a hang guard.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "protocol/bytes.hpp"
#include "transport/link.hpp"
#include "transport/socket.hpp"

namespace vox::test {

/// Runs `body` on a thread. If the test leaves the scope without `join` (a failed REQUIRE
/// throws), `unblock` runs first so that the thread cannot keep the test waiting.
/// Catch2 assertions are not thread-safe: `body` records results, the test checks them.
class peer_thread {
public:
  peer_thread(std::function<void()> unblock, std::function<void()> body)
    : unblock_(std::move(unblock)), thread_(std::move(body)) {
    // nop
  }

  peer_thread(const peer_thread&) = delete;
  peer_thread& operator=(const peer_thread&) = delete;

  ~peer_thread() {
    if (thread_.joinable()) {
      unblock_();
      thread_.join();
    }
  }

  /// Waits for `body` to finish.
  void join() {
    thread_.join();
  }

private:
  std::function<void()> unblock_;
  std::thread thread_;
};

/// Runs `on_expiry` if the test has not finished within a generous bound, so that code that
/// wrongly blocks makes the test fail instead of hang. Never fires in a passing run.
class watchdog {
public:
  explicit watchdog(std::function<void()> on_expiry,
                    std::chrono::seconds limit = std::chrono::seconds{20})
    : thread_([this, on_expiry = std::move(on_expiry), limit] {
        std::unique_lock<std::mutex> guard{mtx_};
        if (!cv_.wait_for(guard, limit, [this] { return done_; })) {
          fired_ = true;
          on_expiry();
        }
      }) {
    // nop
  }

  /// Aborts `lnk` on expiry: a blocked `recv` on it returns.
  explicit watchdog(link_ptr lnk, std::chrono::seconds limit = std::chrono::seconds{20})
    : watchdog([lnk = std::move(lnk)] { lnk->abort(); }, limit) {
    // nop
  }

  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  ~watchdog() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  /// True once the bound passed and `on_expiry` ran: whatever it rescued was stuck.
  bool fired() const noexcept {
    return fired_.load();
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

/// The kernel's id of the calling thread, for `wait_until_blocked`.
inline pid_t current_tid() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

/// Waits until the thread that stored its id in `tid` is asleep in the kernel (blocked in a
/// system call or on a futex), so that a test can interrupt a call that is really blocked
/// rather than one that has not started yet. Reads /proc; polls without sleeping and gives
/// up after a generous bound. False if the thread never blocked or set `finished` first.
inline bool wait_until_blocked(const std::atomic<pid_t>& tid, const std::atomic<bool>& finished,
                               std::chrono::seconds limit = std::chrono::seconds{20}) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline && !finished.load()) {
    if (auto id = tid.load(); id != 0) {
      std::ifstream in{"/proc/self/task/" + std::to_string(id) + "/stat"};
      std::string stat;
      std::getline(in, stat);
      // The state follows the parenthesised command name, which may itself contain ')'.
      auto paren = stat.rfind(')');
      if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'S')
        return !finished.load();
    }
    std::this_thread::yield();
  }
  return false;
}

/// A private directory under the system temp dir, removed with its contents at scope exit.
class temp_dir {
public:
  temp_dir() {
    auto pattern = (std::filesystem::temp_directory_path() / "vox-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr)
      path_ = pattern;
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty())
      std::filesystem::remove_all(path_, ec);
  }

  /// Empty if the directory could not be created.
  const std::filesystem::path& path() const {
    return path_;
  }

private:
  std::filesystem::path path_;
};

/// Receive timeout for raw sockets: a peer that wrongly stays silent fails the read
/// instead of hanging the test.
inline void set_recv_bound(int fd) {
  timeval tv{};
  tv.tv_sec = 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/// A plain TCP connection to 127.0.0.1:`port`, invalid on failure.
inline unique_fd raw_connect(uint16_t port) {
  unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd)
    return fd;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0)
    return unique_fd{};
  set_recv_bound(fd.get());
  return fd;
}

/// A plain TCP listening socket on 127.0.0.1 with an ephemeral port.
struct raw_listener {
  unique_fd fd;
  uint16_t port = 0;

  raw_listener() {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) < 0
        || ::listen(fd.get(), 4) < 0
        || ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
      fd.reset();
      return;
    }
    port = ntohs(addr.sin_port);
  }

  /// The next connection, with a receive bound; invalid on failure.
  unique_fd accept() {
    unique_fd conn{::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC)};
    if (conn)
      set_recv_bound(conn.get());
    return conn;
  }
};

/// Writes all of `data`; false on failure.
inline bool write_all(int fd, byte_span data) {
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0)
      return false;
    data = data.subspan(static_cast<size_t>(n));
  }
  return true;
}

/// Reads exactly `n` bytes; fewer on end of stream, error or the receive bound.
inline byte_buffer read_exactly(int fd, size_t n) {
  byte_buffer out(n);
  size_t got = 0;
  while (got < n) {
    auto r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0)
      break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

/// The number of threads of this process (`Threads:` in /proc/self/status).
inline size_t thread_count() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0)
      return std::stoul(line.substr(8));
  return 0;
}

/// True if the peer closed its sending side: a read returns end of stream.
inline bool reads_eof(int fd) {
  uint8_t byte;
  return ::recv(fd, &byte, 1, 0) == 0;
}

} // namespace vox::test
