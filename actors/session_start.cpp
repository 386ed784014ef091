// Starting sessions: prologue and handshake on the calling thread, then the actors.
#include <condition_variable>
#include <mutex>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <caf/scoped_actor.hpp>

#include "actors/backoff.hpp"
#include "actors/driver_actor.hpp"
#include "actors/io.hpp"
#include "actors/session_actor.hpp"
#include "actors/session_input.hpp"
#include "transport/prologue.hpp"
#include "transport/stable_hello.hpp"
#include "transport/zstd_link.hpp"

namespace vox {

session_handle spawn_session(caf::actor_system& sys, link_ptr link, handshake_result handshake,
                             session_options options,
                             std::shared_ptr<detail::inbound_routes> started_routes) {
  auto peer = std::make_shared<const link_peer>(link->peer());
  detail::guard_session({&options.root_handler, &options.acceptor, &options.authorize}, peer);
  auto conduit = std::make_shared<bare_conduit>(std::move(link));
  auto root_handler = options.root_handler;
  auto log = log_sink_of(options);
  auto operations = options.retry ? std::optional{options.operation_limits} : std::nullopt;
  auto session = sys.spawn(session_behavior, conduit, handshake, std::move(options));
  // The root driver exists before the session reads anything, so the handle returned here
  // is complete; attach_root_msg is the first message the session processes.
  // r[impl rpc.channel.binding]
  auto channels = std::make_shared<detail::channel_context>(0, handshake.our_settings.parity, conduit, sys);
  driver_config cfg{0,       handshake.our_settings,  handshake.peer_settings,     conduit,   session,
                    std::move(root_handler), channels, std::move(log), handshake.peer_supports_retry, operations};
  auto root_driver = sys.spawn(driver_behavior, std::move(cfg));
  auto callers = std::make_shared<detail::caller_registry>();
  caf::anon_send(session, attach_root_msg{root_driver, callers, std::move(started_routes)});
  session_handle out;
  out.actor = session;
  out.root = connection_handle{0, session, root_driver, handshake.our_settings, handshake.peer_settings,
                               std::move(callers), std::move(channels)};
  out.handshake = std::move(handshake);
  out.peer = std::move(peer);
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

/// Runs `run` (prologue and handshake) on the calling thread within `timeout`; on any
/// failure the link is aborted.
template <class Run>
auto shake_hands(link& lnk, const link_ptr& owner, std::chrono::milliseconds timeout, Run&& run)
  -> decltype(run(lnk)) {
  decltype(run(lnk)) hs = caf::error{};
  bool timed_out = false;
  {
    watchdog dog{owner, timeout};
    hs = run(lnk);
    timed_out = dog.fired();
  }
  // A watchdog that fired just after a successful handshake has aborted the link anyway.
  if (!hs || timed_out) {
    lnk.abort();
    if (timed_out)
      return make_error(errc::timeout, "handshake did not finish within " + std::to_string(timeout.count()) + " ms");
    return std::move(hs.error());
  }
  return hs;
}

/// The initiator's prologue and handshake on `link` (then, for the stable conduit, its
/// hellos: `session_link` becomes the stable link over `link`).
caf::expected<handshake_result> initiator_handshake(const link_ptr& link, const handshake_options& opts,
                                                    std::chrono::milliseconds timeout,
                                                    conduit_mode mode = conduit_mode::bare,
                                                    link_ptr* session_link = nullptr,
                                                    const stable_options& stable = {}) {
  return shake_hands(*link, link, timeout, [&](vox::link& lnk) -> caf::expected<handshake_result> {
    if (auto m = initiate_transport(lnk, mode); !m)
      return std::move(m.error());
    auto hs = handshake_as_initiator(lnk, opts);
    if (!hs || mode != conduit_mode::stable)
      return hs;
    auto wrapped = stable_as_initiator(link, stable);
    if (!wrapped)
      return std::move(wrapped.error());
    *session_link = std::move(*wrapped);
    return hs;
  });
}

/// Keeps an initiator's stable conduit connected after its transport broke, on a thread
/// of its own while it runs: dials `options.reconnect`, runs the prologue (mode stable)
/// and the reconnect hellos, with the session's backoff policy, until `resume_timeout`.
/// Then the conduit replays what the acceptor missed and the session never notices; if
/// no attempt succeeds, the session ends with session_lost.
void stable_reconnect_loop(caf::blocking_actor* self, std::weak_ptr<stable_link> weak, session_options options) {
  auto& policy = options.reconnect_policy;
  auto r = detail::with_backoff(
    self, policy.max_attempts, policy.initial_delay, policy.max_delay,
    std::chrono::steady_clock::now() + options.resume_timeout,
    [&]() -> caf::expected<void> {
      auto s = weak.lock();
      if (!s)
        return make_error(errc::closed, "the stable conduit is gone");
      auto lnk = options.reconnect();
      if (!lnk)
        return std::move(lnk.error());
      return shake_hands(**lnk, *lnk, options.handshake_timeout, [&](vox::link& l) -> caf::expected<void> {
        if (auto m = initiate_transport(l, conduit_mode::stable); !m)
          return std::move(m.error());
        return stable_reconnect_as_initiator(s, *lnk);
      });
    },
    [](const caf::error& e) { return is(e, errc::session_lost) || is(e, errc::closed); });
  if (r.succeeded || r.stopped)
    return;
  if (auto s = weak.lock())
    s->fail(make_error(errc::session_lost, "the stable conduit could not reconnect after "
                                             + std::to_string(r.attempts) + " attempt(s): "
                                             + (r.last ? describe(r.last) : std::string{"deadline passed"})));
}

/// An acceptor's refusal of a session-level resume over the stable conduit, which cannot
/// take the session's link yet.
caf::error no_stable_resume() {
  return make_error(errc::resume_refused, "resuming a session over the stable conduit is not supported");
}

/// Hands `link` to `session` as its new link and waits for the answer.
caf::expected<void> hand_over(caf::actor_system& sys, const session_actor& session, link_ptr link,
                              handshake_result hs) {
  auto compressed = compress_if_agreed(std::move(link), hs);
  if (!compressed)
    return std::move(compressed.error());
  link = std::move(*compressed);
  caf::scoped_actor self{sys};
  caf::expected<void> out = caf::error{};
  self->request(session, caf::infinite, resume_msg{link, std::move(hs), session_input::next_epoch(), nullptr})
    .receive([&](caf::ok_atom) { out = {}; }, [&](caf::error& err) { out = std::move(err); });
  if (!out)
    link->abort(); // a session that ended before it saw the link never took it
  return out;
}

} // namespace

conduit_mode_set accepted_modes(const session_options& options) {
  if (options.accept_stable)
    return {conduit_mode::bare, conduit_mode::stable};
  return {conduit_mode::bare};
}

handshake_options handshake_options_of(const session_options& options) {
  handshake_options out;
  out.settings = options.settings;
  out.resumable = options.resumable;
  out.supports_retry = options.retry;
  out.compression = options.compression;
  if (options.resumable && options.registry)
    out.known_resume_key = [registry = options.registry](byte_span key) { return registry->find(key) != nullptr; };
  return out;
}

// r[impl session.initiator]
caf::expected<session_handle> connect_session(caf::actor_system& sys, link_ptr link,
                                              session_options options) {
  if (auto refused = refuse_on_io_thread("connect_session")) {
    link->abort();
    return refused;
  }
  auto stable = options.conduit == conduit_mode::stable;
  if (stable && options.resumable) {
    link->abort();
    return make_error(errc::invalid_request, "a resumable session over the stable conduit is not supported yet");
  }
  auto session_link = link;
  auto hs = initiator_handshake(link, handshake_options_of(options), options.handshake_timeout, options.conduit,
                                &session_link, options.stable);
  if (!hs)
    return std::move(hs.error());
  // Behaviour 20: a resumable session needs the acceptor's key.
  if (options.resumable && !hs->session_resume_key) {
    link->abort();
    return make_error(errc::resume_refused, "peer did not advertise session resumption");
  }
  // r[impl stable.link-source]
  if (stable && options.reconnect) {
    auto s = std::static_pointer_cast<stable_link>(session_link);
    s->on_transport_lost([&sys, weak = std::weak_ptr<stable_link>{s}, options](caf::error) {
      sys.spawn<caf::detached>(stable_reconnect_loop, weak, options);
    });
  }
  // r[impl vox-caf.zstd.stream]: above the stable conduit, whose replay keeps the
  // compressed stream whole across reconnects.
  auto compressed = compress_if_agreed(std::move(session_link), *hs);
  if (!compressed)
    return std::move(compressed.error());
  return spawn_session(sys, std::move(*compressed), std::move(*hs), std::move(options));
}

// r[impl session.acceptor]
caf::expected<session_handle> accept_session(caf::actor_system& sys, link_ptr link,
                                             session_options options) {
  if (auto refused = refuse_on_io_thread("accept_session")) {
    link->abort();
    return refused;
  }
  auto hs_opts = handshake_options_of(options);
  auto session_link = link;
  auto hs = shake_hands(*link, link, options.handshake_timeout, [&](vox::link& lnk) -> caf::expected<handshake_result> {
    auto mode = accept_transport(lnk, accepted_modes(options));
    if (!mode)
      return std::move(mode.error());
    auto shaken = handshake_as_acceptor(lnk, hs_opts);
    if (!shaken || *mode != conduit_mode::stable)
      return shaken;
    if (shaken->peer_resume_key)
      return no_stable_resume();
    auto wrapped = stable_as_acceptor(link, options.stable);
    if (!wrapped)
      return std::move(wrapped.error());
    session_link = std::move(*wrapped);
    return shaken;
  });
  if (!hs)
    return std::move(hs.error());
  if (hs->peer_resume_key) { // known: the handshake refused unknown keys
    auto session = options.registry->find(*hs->peer_resume_key);
    if (!session) {
      link->abort();
      return make_error(errc::resume_refused, "the session of that resume key ended during the handshake");
    }
    session_handle out;
    out.actor = session;
    out.handshake = *hs;
    out.resumed = true;
    if (auto taken = hand_over(sys, session, std::move(link), std::move(*hs)); !taken)
      return std::move(taken.error());
    return out;
  }
  auto compressed = compress_if_agreed(std::move(session_link), *hs);
  if (!compressed)
    return std::move(compressed.error());
  return spawn_session(sys, std::move(*compressed), std::move(*hs), std::move(options));
}

caf::expected<void> resume_session(caf::actor_system& sys, const session_actor& session, link_ptr link,
                                   const session_options& options) {
  if (auto refused = refuse_on_io_thread("resume_session")) {
    link->abort();
    return refused;
  }
  caf::expected<session_info> info = caf::error{};
  {
    caf::scoped_actor self{sys};
    self->request(session, options.handshake_timeout, caf::get_atom::value)
      .receive([&](session_info& i) { info = std::move(i); }, [&](caf::error& err) { info = std::move(err); });
  }
  if (!info) {
    link->abort();
    return make_error(errc::session_shutdown, "the session is gone: " + describe(info.error()));
  }
  if (!info->resume_key) {
    link->abort();
    return make_error(errc::resume_refused, "session is not resumable");
  }
  auto hs_opts = handshake_options_of(options);
  hs_opts.resume_key = byte_buffer(info->resume_key->begin(), info->resume_key->end());
  auto hs = initiator_handshake(link, hs_opts, options.handshake_timeout);
  if (!hs) {
    // The peer answered the key with Sorry (or anything but HelloYourself): it will not
    // resume this session on any link.
    if (is(hs.error(), errc::handshake_failed))
      return make_error(errc::resume_refused, "the peer refused the resume: " + describe(hs.error()));
    return std::move(hs.error());
  }
  return hand_over(sys, session, std::move(link), std::move(*hs));
}

} // namespace vox
