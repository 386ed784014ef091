// A TCP server that runs one acceptor session per accepted socket.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>

#include "actors/session_actor.hpp"
#include "transport/tcp_link.hpp"

namespace vox {

/// Accepts TCP connections and runs prologue + handshake for each on its own thread (so a
/// peer that stalls never delays another; `options.handshake_timeout` cuts it off), then
/// starts an acceptor session with `options`.
class session_server {
public:
  struct config {
    std::string host = "127.0.0.1";
    uint16_t port = 0; ///< 0 picks a free port (see `port()`)
    session_options options;
    link_options links;
    /// Handshakes in progress at once; sockets beyond it are closed at once.
    size_t max_pending_handshakes = 256;
    /// Called (on a handshake thread) with every established session; must not call stop().
    std::function<void(const session_handle&)> on_session;
  };

  static caf::expected<std::unique_ptr<session_server>> start(caf::actor_system& sys, config cfg);

  ~session_server();

  uint16_t port() const { return listener_->port(); }

  /// Stops accepting, aborts handshakes in progress and asks every session it started to
  /// end. Idempotent; the destructor calls it.
  void stop();

  /// Sessions established so far (including ended ones).
  size_t sessions_started() const { return started_.load(); }

private:
  session_server(caf::actor_system& sys, config cfg, std::unique_ptr<tcp_listener> listener);
  void accept_loop();
  void reap_finished_locked();

  struct handshake_job {
    link_ptr link;
    std::thread thread;
    bool done = false;
  };

  caf::actor_system& sys_;
  config cfg_;
  std::unique_ptr<tcp_listener> listener_;
  std::thread acceptor_;
  std::mutex mtx_;
  std::list<handshake_job> jobs_;
  size_t pending_ = 0; ///< handshakes still running (finished jobs wait to be joined)
  std::vector<session_actor> sessions_;
  std::atomic<size_t> started_{0};
  bool stopped_ = false;
};

} // namespace vox
