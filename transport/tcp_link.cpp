#include "transport/tcp_link.hpp"

#include <cerrno>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "transport/socket_link.hpp"

namespace vox {

namespace {

std::string endpoint(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

// Two small writes per message without it cost a delayed-ACK round trip each
// (caf-0.17-notes.md); send already writes one sendmsg per frame, this covers the rest.
caf::error set_nodelay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
    return make_system_error(errc::io_error, "cannot set TCP_NODELAY", errno);
  return {};
}

struct addrinfo_deleter {
  void operator()(addrinfo* info) const noexcept {
    ::freeaddrinfo(info);
  }
};

using addrinfo_ptr = std::unique_ptr<addrinfo, addrinfo_deleter>;

caf::expected<addrinfo_ptr> resolve(const std::string& host, uint16_t port, int flags) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = flags;
  addrinfo* result = nullptr;
  auto service = std::to_string(port);
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    auto what = "cannot resolve " + endpoint(host, port) + ": ";
    if (rc == EAI_SYSTEM)
      return make_system_error(errc::io_error, what + "getaddrinfo", errno);
    return make_error(errc::io_error, what + ::gai_strerror(rc));
  }
  return addrinfo_ptr{result};
}

/// connect(2) that survives EINTR: the attempt continues in the background, so wait for
/// it to finish instead of calling connect again.
int connect_fd(int fd, const sockaddr* addr, socklen_t len) {
  if (::connect(fd, addr, len) == 0)
    return 0;
  if (errno != EINTR)
    return errno;
  for (;;) {
    pollfd pfd{fd, POLLOUT, 0};
    if (::poll(&pfd, 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
      return errno;
    return err;
  }
}

} // namespace

caf::expected<link_ptr> tcp_connect(const std::string& host, uint16_t port,
                                    link_options options) {
  // No AI_ADDRCONFIG: with only a loopback interface it hides "localhost".
  auto infos = resolve(host, port, 0);
  if (!infos)
    return infos.error();
  int last_err = EADDRNOTAVAIL;
  for (auto* info = infos->get(); info != nullptr; info = info->ai_next) {
    unique_fd fd{::socket(info->ai_family, info->ai_socktype | SOCK_CLOEXEC, info->ai_protocol)};
    if (!fd) {
      last_err = errno;
      continue;
    }
    if (int err = connect_fd(fd.get(), info->ai_addr, info->ai_addrlen); err != 0) {
      last_err = err;
      continue;
    }
    if (auto err = set_nodelay(fd.get()))
      return err;
    return make_stream_link(std::move(fd), "tcp", options, host);
  }
  return make_system_error(errc::io_error, "cannot connect to " + endpoint(host, port), last_err);
}

tcp_listener::tcp_listener(std::unique_ptr<socket_acceptor> acceptor, uint16_t port,
                           link_options options)
  : acceptor_(std::move(acceptor)), port_(port), options_(options) {
  // nop
}

caf::expected<std::unique_ptr<tcp_listener>>
tcp_listener::bind(const std::string& host, uint16_t port, link_options options) {
  auto infos = resolve(host, port, AI_PASSIVE);
  if (!infos)
    return infos.error();
  int last_err = EADDRNOTAVAIL;
  for (auto* info = infos->get(); info != nullptr; info = info->ai_next) {
    unique_fd fd{::socket(info->ai_family, info->ai_socktype | SOCK_CLOEXEC, info->ai_protocol)};
    if (!fd) {
      last_err = errno;
      continue;
    }
    int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0
        || ::bind(fd.get(), info->ai_addr, info->ai_addrlen) < 0
        || ::listen(fd.get(), SOMAXCONN) < 0) {
      last_err = errno;
      continue;
    }
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof(bound);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) < 0)
      return make_system_error(errc::io_error, "getsockname on the listener failed", errno);
    uint16_t bound_port = bound.ss_family == AF_INET6
                            ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    auto acceptor = socket_acceptor::make(std::move(fd));
    if (!acceptor)
      return acceptor.error();
    return std::make_unique<tcp_listener>(std::move(*acceptor), bound_port, options);
  }
  return make_system_error(errc::io_error, "cannot listen on " + endpoint(host, port), last_err);
}

namespace {

caf::expected<link_ptr> accepted_link(unique_fd fd, const link_options& options) {
  // Best effort: it can only fail on a connection that is already gone, and that one
  // reports itself on its first recv.
  [[maybe_unused]] auto err = set_nodelay(fd.get());
  return make_stream_link(std::move(fd), "tcp", options, {});
}

} // namespace

caf::expected<link_ptr> tcp_listener::accept() {
  auto fd = acceptor_->accept();
  if (!fd)
    return fd.error();
  return accepted_link(std::move(*fd), options_);
}

caf::expected<std::optional<link_ptr>> tcp_listener::try_accept() {
  auto fd = acceptor_->try_accept();
  if (!fd)
    return fd.error();
  if (!*fd)
    return std::optional<link_ptr>{};
  auto lnk = accepted_link(std::move(**fd), options_);
  if (!lnk)
    return lnk.error();
  return std::optional<link_ptr>{std::move(*lnk)};
}

int tcp_listener::fd() const noexcept {
  return acceptor_->fd();
}

void tcp_listener::shutdown() noexcept {
  acceptor_->shutdown();
}

} // namespace vox
