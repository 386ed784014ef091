// Unix-domain stream socket links: connect to a socket path, or listen on one.
#pragma once

#include <memory>
#include <string>

#include <sys/types.h>

#include <caf/expected.hpp>

#include "transport/link.hpp"
#include "transport/socket.hpp"

namespace vox {

/// Connects to the Unix-domain stream socket at `path` and wraps it into a socket link.
caf::expected<link_ptr> unix_connect(const std::string& path, link_options options = {});

/// A listening Unix-domain socket that hands out a link per accepted connection.
///
/// `accept` blocks and must be called by one thread at a time; `shutdown` may be called
/// from any thread and interrupts it. Destroying the listener removes its socket file,
/// unless something else has replaced it in the meantime.
class unix_listener {
public:
  /// Listens on `path`. A socket file left there by a listener that is gone is removed
  /// first; a live listener on `path`, or a file that is no socket, is an error.
  static caf::expected<std::unique_ptr<unix_listener>> bind(const std::string& path,
                                                             link_options options = {});

  ~unix_listener();

  unix_listener(const unix_listener&) = delete;
  unix_listener& operator=(const unix_listener&) = delete;

  /// The socket path.
  const std::string& path() const noexcept {
    return path_;
  }

  /// Waits for the next connection. Fails with `errc::closed` after `shutdown`.
  caf::expected<link_ptr> accept();

  /// Stops listening for good: wakes a blocked `accept`. Idempotent.
  void shutdown() noexcept;

  unix_listener(std::unique_ptr<socket_acceptor> acceptor, std::string path, dev_t dev,
                ino_t ino, link_options options);

private:
  std::unique_ptr<socket_acceptor> acceptor_;
  std::string path_;
  /// Identity of the socket file we created, so the destructor removes only that one.
  dev_t dev_;
  ino_t ino_;
  link_options options_;
};

} // namespace vox
