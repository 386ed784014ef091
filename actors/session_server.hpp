// A TCP server that runs one acceptor session per accepted socket, on the I/O reactor.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "actors/session_actor.hpp"
#include "transport/tcp_link.hpp"

namespace vox {

/// Accepts TCP connections on an I/O thread and runs each one's prologue and handshake as
/// its frames arrive (no thread per connection or per handshake; a peer that stalls never
/// delays another and is cut off after `options.handshake_timeout`), then starts an
/// acceptor session with `options` on the same link.
class session_server {
public:
  struct config {
    std::string host = "127.0.0.1";
    uint16_t port = 0; ///< 0 picks a free port (see `port()`)
    session_options options;
    link_options links;
    /// Handshakes in progress at once; sockets beyond it are closed at once.
    size_t max_pending_handshakes = 256;
    /// Sessions running plus handshakes in progress; a connection beyond it is closed at
    /// once, before its handshake (README "Deployment and security").
    size_t max_sessions = 65536;
    /// The same, for one peer IP address (whatever its ports). As high as max_sessions by
    /// default: a gateway or a NAT puts many clients behind one address; lower it for a
    /// server that faces untrusted peers directly.
    size_t max_sessions_per_peer = 65536;
    /// Called on an I/O thread with every established session, before the session reads
    /// anything; must not block and must not call stop().
    std::function<void(const session_handle&)> on_session;
    /// Called on an I/O thread with every accepted link, before its handshake (and so
    /// also with links that resume a session); must not block.
    std::function<void(const link_ptr&)> on_link;
    /// Called on an I/O thread after each handshake that starts a session, before the
    /// session exists: may change that session's options (an acceptor of its own, say).
    /// The function it returns, if any, then runs with the session right after
    /// `on_session`, before the session reads anything. Must not block.
    std::function<std::function<void(const session_handle&)>(session_options&)> customize;
  };

  static caf::expected<std::unique_ptr<session_server>> start(caf::actor_system& sys, config cfg);

  ~session_server();

  uint16_t port() const { return port_; }

  /// Stops accepting, aborts handshakes in progress and asks every session it started to
  /// end. Idempotent; the destructor calls it.
  void stop();

  /// Sessions established so far (including ended ones).
  size_t sessions_started() const;

  /// Sessions established and not yet terminated.
  size_t sessions_running() const;

  /// Prologues and handshakes under way (they count against max_sessions).
  size_t handshakes_in_progress() const;

  /// Connections closed at once for a limit (max_pending_handshakes, max_sessions,
  /// max_sessions_per_peer).
  size_t connections_refused() const;

  struct core; ///< what the I/O thread and the handshakes share with the server

private:
  session_server(std::shared_ptr<core> c, uint16_t port) : core_(std::move(c)), port_(port) {}

  std::shared_ptr<core> core_;
  uint16_t port_;
};

} // namespace vox
