// POSIX socket building blocks shared by the TCP and Unix-domain transports.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include <sys/socket.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "protocol/error.hpp"

namespace vox {

/// Sole owner of a file descriptor; closes it on destruction.
class unique_fd {
public:
  unique_fd() noexcept = default;

  /// Takes ownership of `fd` (-1 for none).
  explicit unique_fd(int fd) noexcept : fd_(fd) {
    // nop
  }

  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {
    // nop
  }

  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other)
      reset(other.release());
    return *this;
  }

  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  ~unique_fd() {
    reset();
  }

  /// The descriptor, still owned by this object.
  int get() const noexcept {
    return fd_;
  }

  /// True if a descriptor is owned.
  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }

  /// Gives up ownership without closing.
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  /// Closes the owned descriptor, if any, and takes ownership of `fd`.
  void reset(int fd = -1) noexcept;

private:
  int fd_ = -1;
};

/// A vox error with `code` whose description is "`what`: <text of errno value `err`>".
caf::error make_system_error(errc code, const std::string& what, int err);

/// Renders a socket address: "127.0.0.1:5000", "[::1]:5000", or the path of a Unix socket.
std::string to_string(const sockaddr* addr, socklen_t len);

/// The local and the peer address of a connected socket, as "local->peer".
std::string describe_connection(int fd);

/// Blocking `accept` on a listening socket that another thread can interrupt.
///
/// `accept` and `shutdown` may run concurrently; `accept` itself must be called by one
/// thread at a time. The object owns the listening socket.
class socket_acceptor {
public:
  /// Takes a bound, listening socket and prepares the wake-up channel.
  static caf::expected<std::unique_ptr<socket_acceptor>> make(unique_fd listen_fd);

  /// Waits for the next connection and returns its socket (close-on-exec). Fails with
  /// `errc::closed` once `shutdown` was called, including when it interrupts the wait.
  caf::expected<unique_fd> accept();

  /// Takes a pending connection without waiting (the listening socket is non-blocking):
  /// nullopt when none is pending. For acceptors driven by readiness events on `fd()`.
  caf::expected<std::optional<unique_fd>> try_accept();

  /// Makes every current and future `accept` fail with `errc::closed`. Idempotent.
  void shutdown() noexcept;

  /// The listening socket.
  int fd() const noexcept {
    return listen_fd_.get();
  }

  socket_acceptor(unique_fd listen_fd, unique_fd wake_read, unique_fd wake_write) noexcept;

private:
  /// One accept4: a socket, nullopt when none is pending (`retry`: after a transient
  /// failure worth retrying at once), or an error.
  struct attempt {
    caf::expected<std::optional<unique_fd>> result;
    bool retry;
  };
  attempt accept_once();

  unique_fd listen_fd_;
  unique_fd wake_read_;
  unique_fd wake_write_;
  std::atomic<bool> shut_down_{false};
};

} // namespace vox
