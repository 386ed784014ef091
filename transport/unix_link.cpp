#include "transport/unix_link.hpp"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/socket_link.hpp"

namespace vox {

namespace {

caf::expected<sockaddr_un> make_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return make_error(errc::io_error, "unix socket path of " + std::to_string(path.size())
                                        + " bytes is empty or exceeds the "
                                        + std::to_string(sizeof(addr.sun_path) - 1)
                                        + "-byte limit");
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

caf::expected<unique_fd> open_socket() {
  unique_fd fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd)
    return make_system_error(errc::io_error, "cannot create a unix socket", errno);
  return fd;
}

/// errno of a connect attempt, 0 on success.
int connect_fd(int fd, const sockaddr_un& addr) {
  // A Unix-domain connect completes or fails at once, so EINTR can simply retry.
  for (;;) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0)
      return 0;
    if (errno != EINTR)
      return errno;
  }
}

/// Removes a socket file whose listener is gone; refuses to touch anything else.
caf::error remove_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0)
    return errno == ENOENT ? caf::error{}
                           : make_system_error(errc::io_error, "cannot inspect " + path, errno);
  if (!S_ISSOCK(st.st_mode))
    return make_error(errc::io_error, path + " exists and is not a socket");
  auto probe = open_socket();
  if (!probe)
    return probe.error();
  int err = connect_fd(probe->get(), addr);
  if (err == 0)
    return make_error(errc::io_error, "a listener is already active on " + path);
  if (err != ECONNREFUSED)
    return make_system_error(errc::io_error, "cannot probe " + path, err);
  if (::unlink(path.c_str()) < 0 && errno != ENOENT)
    return make_system_error(errc::io_error, "cannot remove stale socket " + path, errno);
  return {};
}

} // namespace

caf::expected<link_ptr> unix_connect(const std::string& path, link_options options) {
  auto addr = make_address(path);
  if (!addr)
    return addr.error();
  auto fd = open_socket();
  if (!fd)
    return fd.error();
  if (int err = connect_fd(fd->get(), *addr); err != 0)
    return make_system_error(errc::io_error, "cannot connect to unix socket " + path, err);
  if (options.tls) // no host name to check: the context's server_name, or "localhost"
    return make_stream_link(std::move(*fd), "unix", options, "localhost");
  return make_socket_link(std::move(*fd), "unix connected to " + path, options);
}

unix_listener::unix_listener(std::unique_ptr<socket_acceptor> acceptor, std::string path,
                             dev_t dev, ino_t ino, link_options options)
  : acceptor_(std::move(acceptor)), path_(std::move(path)), dev_(dev), ino_(ino),
    options_(options) {
  // nop
}

unix_listener::~unix_listener() {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    ::unlink(path_.c_str());
}

caf::expected<std::unique_ptr<unix_listener>> unix_listener::bind(const std::string& path,
                                                                  link_options options) {
  auto addr = make_address(path);
  if (!addr)
    return addr.error();
  if (auto err = remove_stale_socket(path, *addr))
    return err;
  auto fd = open_socket();
  if (!fd)
    return fd.error();
  if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) < 0)
    return make_system_error(errc::io_error, "cannot bind unix socket " + path, errno);
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0 || ::listen(fd->get(), SOMAXCONN) < 0) {
    auto err = make_system_error(errc::io_error, "cannot listen on unix socket " + path, errno);
    ::unlink(path.c_str());
    return err;
  }
  auto acceptor = socket_acceptor::make(std::move(*fd));
  if (!acceptor) {
    ::unlink(path.c_str());
    return acceptor.error();
  }
  return std::make_unique<unix_listener>(std::move(*acceptor), path, st.st_dev, st.st_ino,
                                         options);
}

caf::expected<link_ptr> unix_listener::accept() {
  auto fd = acceptor_->accept();
  if (!fd)
    return fd.error();
  if (options_.tls)
    return make_stream_link(std::move(*fd), "unix", options_, {});
  return make_socket_link(std::move(*fd), "unix accepted on " + path_, options_);
}

void unix_listener::shutdown() noexcept {
  acceptor_->shutdown();
}

} // namespace vox
