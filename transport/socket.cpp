#include "transport/socket.hpp"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

namespace vox {

void unique_fd::reset(int fd) noexcept {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = fd;
}

caf::error make_system_error(errc code, const std::string& what, int err) {
  // std::system_category().message is thread-safe, unlike strerror.
  return make_error(code, what + ": " + std::system_category().message(err));
}

std::string to_string(const sockaddr* addr, socklen_t len) {
  if (addr->sa_family == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(addr);
    auto path_len = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path)
                                                          : 0;
    // Unnamed sockets (the connecting side) have no path; the path may or may not be
    // NUL-terminated within `len`.
    return std::string{un->sun_path, ::strnlen(un->sun_path, path_len)};
  }
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (::getnameinfo(addr, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV)
      != 0)
    return "?";
  if (addr->sa_family == AF_INET6)
    return std::string{"["} + host + "]:" + serv;
  return std::string{host} + ":" + serv;
}

std::string describe_connection(int fd) {
  sockaddr_storage local{};
  sockaddr_storage peer{};
  socklen_t local_len = sizeof(local);
  socklen_t peer_len = sizeof(peer);
  bool have_local = ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0;
  bool have_peer = ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0;
  return (have_local ? to_string(reinterpret_cast<sockaddr*>(&local), local_len) : std::string{"?"}) + "->"
         + (have_peer ? to_string(reinterpret_cast<sockaddr*>(&peer), peer_len) : std::string{"?"});
}

socket_acceptor::socket_acceptor(unique_fd listen_fd, unique_fd wake_read,
                                 unique_fd wake_write) noexcept
  : listen_fd_(std::move(listen_fd)),
    wake_read_(std::move(wake_read)),
    wake_write_(std::move(wake_write)) {
  // nop
}

caf::expected<std::unique_ptr<socket_acceptor>> socket_acceptor::make(unique_fd listen_fd) {
  // Non-blocking, so that a connection reset between poll and accept cannot leave us
  // blocked in accept where shutdown no longer reaches us.
  int flags = ::fcntl(listen_fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listen_fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    return make_system_error(errc::io_error, "cannot make the listening socket non-blocking",
                             errno);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
    return make_system_error(errc::io_error, "cannot create the listener's wake-up pipe",
                             errno);
  return std::make_unique<socket_acceptor>(std::move(listen_fd), unique_fd{pipe_fds[0]},
                                           unique_fd{pipe_fds[1]});
}

caf::expected<std::optional<unique_fd>> socket_acceptor::try_accept() {
  for (;;) {
    if (shut_down_.load())
      return make_error(errc::closed, "listener shut down");
    auto r = accept_once();
    if (!r.retry)
      return std::move(r.result);
  }
}

socket_acceptor::attempt socket_acceptor::accept_once() {
  int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0)
    return {std::optional<unique_fd>{unique_fd{fd}}, false};
  switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return {std::optional<unique_fd>{}, false};
    // Transient: the connection went away before we took it, or a signal arrived.
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
      return {std::optional<unique_fd>{}, true};
    default:
      return {make_system_error(errc::io_error, "accept failed", errno), false};
  }
}

caf::expected<unique_fd> socket_acceptor::accept() {
  for (;;) {
    if (shut_down_.load())
      return make_error(errc::closed, "listener shut down");
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return make_system_error(errc::io_error, "poll on the listening socket failed", errno);
    }
    if (fds[1].revents != 0 || shut_down_.load())
      return make_error(errc::closed, "listener shut down");
    if (fds[0].revents == 0)
      continue;
    auto r = accept_once();
    if (!r.result)
      return std::move(r.result.error());
    if (*r.result)
      return std::move(**r.result);
    // Nothing after all, or a transient failure: wait again.
  }
}

void socket_acceptor::shutdown() noexcept {
  if (shut_down_.exchange(true))
    return;
  // The byte is never read, so the pipe stays readable and every later poll wakes too.
  uint8_t byte = 1;
  [[maybe_unused]] auto written = ::write(wake_write_.get(), &byte, 1);
}

} // namespace vox
