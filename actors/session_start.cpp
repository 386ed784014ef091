// Starting sessions: prologue and handshake on the calling thread, then the actors.
#include <condition_variable>
#include <mutex>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/driver_actor.hpp"
#include "actors/session_actor.hpp"
#include "transport/prologue.hpp"

namespace vox {

session_handle spawn_session(caf::actor_system& sys, link_ptr link, handshake_result handshake,
                             session_options options, bool link_started) {
  auto conduit = std::make_shared<bare_conduit>(std::move(link));
  auto root_handler = options.root_handler;
  auto log = log_sink_of(options);
  auto session = sys.spawn(session_behavior, conduit, handshake, std::move(options));
  // The root driver exists before the session reads anything, so the handle returned here
  // is complete; attach_root_msg is the first message the session processes.
  // r[impl rpc.channel.binding]
  auto channels = std::make_shared<detail::channel_context>(0, handshake.our_settings.parity, conduit, sys);
  driver_config cfg{0,       handshake.our_settings,  handshake.peer_settings, conduit, session,
                    std::move(root_handler), channels, std::move(log)};
  auto root_driver = sys.spawn(driver_behavior, std::move(cfg));
  auto callers = std::make_shared<detail::caller_registry>();
  caf::anon_send(session, attach_root_msg{root_driver, callers, link_started});
  session_handle out;
  out.actor = session;
  out.root = connection_handle{0, session, root_driver, handshake.our_settings, handshake.peer_settings,
                               std::move(callers), std::move(channels)};
  out.handshake = std::move(handshake);
  return out;
}

namespace {

/// Aborts `lnk` unless disarmed within `timeout`: a peer that stalls mid-handshake loses
/// its link instead of holding our thread forever.
class watchdog {
public:
  watchdog(link_ptr lnk, std::chrono::milliseconds timeout) {
    thread_ = std::thread{[this, lnk = std::move(lnk), timeout] {
      std::unique_lock<std::mutex> guard{mtx_};
      if (!cv_.wait_for(guard, timeout, [this] { return disarmed_; })) {
        fired_ = true;
        lnk->abort();
      }
    }};
  }
  ~watchdog() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      disarmed_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool fired() {
    std::lock_guard<std::mutex> guard{mtx_};
    return fired_;
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  bool fired_ = false;
  std::thread thread_;
};

template <class Establish>
caf::expected<session_handle> establish(caf::actor_system& sys, link_ptr link, session_options options,
                                        Establish&& run) {
  caf::expected<handshake_result> hs = caf::error{};
  bool timed_out = false;
  {
    watchdog dog{link, options.handshake_timeout};
    hs = run(*link);
    timed_out = dog.fired();
  }
  // A watchdog that fired just after a successful handshake has aborted the link anyway.
  if (!hs || timed_out) {
    link->abort();
    if (timed_out)
      return make_error(errc::timeout, "handshake did not finish within "
                                         + std::to_string(options.handshake_timeout.count()) + " ms");
    return std::move(hs.error());
  }
  return spawn_session(sys, std::move(link), std::move(*hs), std::move(options));
}

} // namespace

handshake_options handshake_options_of(const session_options& options) {
  handshake_options out;
  out.settings = options.settings;
  out.resumable = options.resumable;
  return out;
}

// r[impl session.initiator]
caf::expected<session_handle> connect_session(caf::actor_system& sys, link_ptr link,
                                              session_options options) {
  auto hs_opts = handshake_options_of(options);
  return establish(sys, std::move(link), std::move(options),
                   [&](vox::link& lnk) -> caf::expected<handshake_result> {
                     if (auto mode = initiate_transport(lnk, conduit_mode::bare); !mode)
                       return std::move(mode.error());
                     return handshake_as_initiator(lnk, hs_opts);
                   });
}

// r[impl session.acceptor]
caf::expected<session_handle> accept_session(caf::actor_system& sys, link_ptr link,
                                             session_options options) {
  auto hs_opts = handshake_options_of(options);
  return establish(sys, std::move(link), std::move(options),
                   [&](vox::link& lnk) -> caf::expected<handshake_result> {
                     if (auto mode = accept_transport(lnk, {conduit_mode::bare}); !mode)
                       return std::move(mode.error());
                     return handshake_as_acceptor(lnk, hs_opts);
                   });
}

} // namespace vox
