// TCP links: connect to a peer, or listen and accept peers (IPv4 and IPv6).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <caf/expected.hpp>

#include "transport/link.hpp"
#include "transport/socket.hpp"

namespace vox {

/// Connects to `host`:`port` (a name or a numeric IPv4/IPv6 address), trying every address
/// the resolver returns, and wraps the connection into a socket link with TCP_NODELAY set.
/// Blocks for as long as the operating system takes to connect or give up.
caf::expected<link_ptr> tcp_connect(const std::string& host, uint16_t port,
                                    link_options options = {});

/// A listening TCP socket that hands out a link per accepted connection.
///
/// `accept` blocks and must be called by one thread at a time; `shutdown` may be called
/// from any thread and interrupts it.
class tcp_listener {
public:
  /// Listens on `host`:`port` (port 0 picks an ephemeral port, see `port`); an empty
  /// `host` listens on every local address. SO_REUSEADDR is set. Accepted links use
  /// `options`.
  static caf::expected<std::unique_ptr<tcp_listener>> bind(const std::string& host, uint16_t port,
                                                            link_options options = {});

  /// The port actually bound.
  uint16_t port() const noexcept {
    return port_;
  }

  /// Waits for the next connection, with TCP_NODELAY set. Fails with `errc::closed` after
  /// `shutdown`.
  caf::expected<link_ptr> accept();

  /// `accept` without waiting: nullopt when no connection is pending. For acceptors driven
  /// by readiness events on `fd()` (an I/O loop).
  caf::expected<std::optional<link_ptr>> try_accept();

  /// The listening socket, for readiness events.
  int fd() const noexcept;

  /// Stops listening for good: wakes a blocked `accept`. Idempotent.
  void shutdown() noexcept;

  tcp_listener(std::unique_ptr<socket_acceptor> acceptor, uint16_t port, link_options options);

private:
  std::unique_ptr<socket_acceptor> acceptor_;
  uint16_t port_;
  link_options options_;
};

} // namespace vox
