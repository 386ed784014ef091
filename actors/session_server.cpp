#include "actors/session_server.hpp"

#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/send.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include "actors/session_input.hpp"
#include "transport/handshake_exchange.hpp"
#include "transport/prologue.hpp"
#include "transport/stable_hello.hpp"
#include "transport/stable_registry.hpp"
#include "transport/zstd_link.hpp"

namespace vox {

namespace {

class accepting_input;

} // namespace

/// The listening socket's handler on an I/O loop, and the server's bookkeeping.
struct session_server::core final : io_handler, std::enable_shared_from_this<core> {
  core(caf::actor_system& sys, config cfg, std::unique_ptr<tcp_listener> listener)
    : sys(sys), cfg(std::move(cfg)), listener(std::move(listener)) {}

  void on_event(io_loop& loop, uint32_t events) override;
  void on_tick(io_loop&, std::chrono::steady_clock::time_point) override {}

  /// A handshake ended: `session` is set when it succeeded. Returns false when the server
  /// has stopped meanwhile (the session is then asked to end).
  bool finished(accepting_input* hs, const session_handle* session);

  caf::actor_system& sys;
  const config cfg;
  std::unique_ptr<tcp_listener> listener;
  io_reactor_ptr io;
  std::shared_ptr<io_loop> loop;
  /// The stable conduits of this server's sessions, by their current key.
  stable_registry stable_conduits;
  std::atomic<size_t> started{0};

  /// Admits a new connection from `ip` against the limits (under mtx); why not otherwise.
  std::optional<std::string> refusal_locked(const std::string& ip) const;
  /// One fewer session or handshake from `ip` (under mtx).
  void release_locked(const std::string& ip);

  std::atomic<size_t> refused{0};
  std::mutex mtx;
  bool stopped = false;
  std::unordered_set<std::shared_ptr<accepting_input>> handshakes;
  /// The peer IP of each handshake in progress, and how many handshakes and sessions each
  /// peer IP holds.
  std::unordered_map<const accepting_input*, std::string> handshake_ips;
  std::unordered_map<std::string, size_t> per_peer;
  /// The sessions running, for stop(). Each removes itself as it terminates: a CAF actor's
  /// storage is freed only when its last weak reference goes, so keeping ended ones (even
  /// weakly) would hold their memory.
  std::unordered_map<caf::actor_id, caf::weak_actor_ptr> sessions;
};

namespace {

/// A new connection's receiver: the acceptor's prologue and handshake, one step per frame,
/// then every frame goes to the session it started (in the same call that delivered
/// LetsGo, so nothing can overtake).
class accepting_input final : public link_receiver, public std::enable_shared_from_this<accepting_input> {
public:
  accepting_input(std::weak_ptr<session_server::core> server, link_ptr lnk, const session_options& options)
    : server_(std::move(server)), link_(std::move(lnk)),
      setup_(std::make_unique<setup>(setup{options, handshake_options_of(options), {}})) {}

  void on_frame(byte_span payload, caf::execution_unit* ctx) override {
    if (session_) {
      session_->on_frame(payload, ctx);
      return;
    }
    if (done_.load())
      return;
    switch (stage_) {
      case stage::prologue:
        // r[impl session.acceptor]
        if (auto mode = answer_transport_hello(*link_, payload, accepted_modes(setup_->options)); !mode) {
          fail();
        } else {
          mode_ = *mode;
          stage_ = stage::hello;
        }
        break;
      case stage::hello:
        if (mode_ == conduit_mode::stable && stable::looks_like_client_hello(payload)) {
          reconnect_stable(payload); // a reconnect: no CBOR handshake, straight to the hello
        } else if (auto hs = answer_hello(*link_, payload, setup_->handshake); !hs) {
          if (is(hs.error(), errc::resume_refused) || is(hs.error(), errc::compression_refused)) {
            closing_ = true;
            link_->close(); // the Sorry goes out before the end of stream
          }
          fail();
        } else {
          setup_->result = std::move(*hs);
          stage_ = stage::lets_go;
        }
        break;
      case stage::lets_go:
        if (auto err = expect_lets_go(payload))
          fail();
        else if (mode_ == conduit_mode::stable)
          stage_ = stage::stable_hello;
        else
          establish();
        break;
      case stage::stable_hello:
        if (setup_->result.peer_resume_key) {
          fail(); // a session-level resume over the stable conduit: not supported
        } else if (auto wrapped = answer_client_hello(link_, payload, setup_->options.stable); !wrapped) {
          fail();
        } else {
          stable_ = std::move(*wrapped);
          establish();
        }
        break;
    }
  }

  void on_end(caf::error reason, caf::execution_unit* ctx) override {
    if (session_)
      session_->on_end(std::move(reason), ctx);
    else
      fail();
  }

  /// The handshake deadline passed.
  void expire() { fail(); }

  void abort() { link_->abort(); }

private:
  enum class stage { prologue, hello, lets_go, stable_hello };

  /// Ends a handshake that did not complete (a no-op once it ended either way). A
  /// prologue reject was already written when this runs: the socket was empty. A link
  /// closed before (to let a Sorry out) is left to finish.
  void fail() {
    if (done_.exchange(true))
      return;
    if (!closing_)
      link_->abort();
    if (auto srv = server_.lock())
      srv->finished(this, nullptr);
  }

  void establish() {
    if (done_.exchange(true))
      return;
    auto srv = server_.lock();
    if (!srv) {
      link_->abort();
      return;
    }
    if (setup_->result.peer_resume_key) {
      resume(*srv);
      return;
    }
    auto grace = setup_->options.resume_timeout;
    auto session_link = compress_if_agreed(stable_ ? link_ptr{stable_} : link_, setup_->result);
    if (!session_link) { // aborted
      srv->finished(this, nullptr);
      return;
    }
    std::function<void(const session_handle&)> started;
    if (srv->cfg.customize)
      started = srv->cfg.customize(setup_->options);
    auto routes = std::make_shared<detail::inbound_routes>();
    auto h = spawn_session(srv->sys, *session_link, std::move(setup_->result), std::move(setup_->options), routes);
    auto input = started_input(*session_link, std::make_shared<session_input>(h.actor, routes));
    if (stable_) {
      // The raw link keeps delivering here; the stable link unwraps for the session.
      await_reconnects(srv, stable_, grace);
      session_ = stable_->adopt_started();
      stable_->start(std::move(input), nullptr);
    } else {
      session_ = std::move(input);
    }
    setup_.reset(); // an idle session should not carry its handshake's state (schemas, options)
    if (!srv->finished(this, &h))
      caf::anon_send(h.actor, stop_atom::value);
    else if (started)
      started(h);
  }

  /// A ClientHello with a key, right after the prologue: the conduit under that key takes
  /// this link (r[stable.reconnect.server-replay]); an unknown key is answered REJECTED.
  void reconnect_stable(byte_span payload) {
    auto srv = server_.lock();
    auto r = answer_reconnect_hello(link_, payload, [&](const stable::key& k) {
      return srv ? srv->stable_conduits.find(k) : nullptr;
    });
    if (!r || !srv) {
      closing_ = true;
      link_->close(); // the REJECTED goes out before the end of stream
      fail();
      return;
    }
    if (done_.exchange(true))
      return;
    srv->stable_conduits.rekey(r->old_key, r->conduit->key());
    session_ = std::move(r->input);
    setup_.reset();
    srv->finished(this, nullptr);
  }

  /// An accepted stable conduit waits for its initiator to reconnect after a break, for
  /// the session's resume_timeout, then ends the session with session_lost.
  static void await_reconnects(const std::shared_ptr<session_server::core>& srv, const std::shared_ptr<stable_link>& s,
                               std::chrono::milliseconds grace) {
    srv->stable_conduits.insert(s->key(), s);
    s->on_transport_lost([weak_srv = std::weak_ptr<session_server::core>{srv}, weak = std::weak_ptr<stable_link>{s},
                          grace](caf::error why) {
      auto core = weak_srv.lock();
      auto conduit = weak.lock();
      if (!core || !conduit) {
        if (conduit)
          conduit->fail(std::move(why));
        return;
      }
      core->loop->post_at(std::chrono::steady_clock::now() + grace, [weak, seen = conduit->transports(), grace] {
        if (auto c = weak.lock(); c && c->transports() == seen)
          c->fail(make_error(errc::session_lost, "the stable conduit's initiator did not reconnect within "
                                                   + std::to_string(grace.count()) + " ms"));
      });
    });
  }

  /// The Hello presented the key of a session in the registry (unknown keys got Sorry):
  /// from now on this link's frames go to that session, which takes the link (or aborts
  /// it, when the resume is refused) before it reads the first of them.
  void resume(session_server::core& srv) {
    auto session = srv.cfg.options.registry->find(*setup_->result.peer_resume_key);
    srv.finished(this, nullptr);
    if (!session) { // it ended since the Hello
      link_->abort();
      return;
    }
    auto session_link = compress_if_agreed(link_, setup_->result);
    if (!session_link)
      return; // aborted
    auto epoch = session_input::next_epoch();
    auto routes = std::make_shared<detail::inbound_routes>();
    session_ = started_input(*session_link, std::make_shared<session_input>(session, routes, epoch));
    caf::anon_send(caf::actor_cast<caf::actor>(session),
                   resume_msg{std::move(*session_link), std::move(setup_->result), epoch, std::move(routes)});
    setup_.reset();
  }

  /// What only the handshake needs; released once it ends.
  struct setup {
    session_options options;
    handshake_options handshake;
    handshake_result result;
  };

  std::weak_ptr<session_server::core> server_;
  link_ptr link_;
  std::unique_ptr<setup> setup_;
  stage stage_ = stage::prologue;
  std::atomic<bool> done_{false};
  bool closing_ = false;
  conduit_mode mode_ = conduit_mode::bare;
  std::shared_ptr<stable_link> stable_; ///< the stable conduit over link_, once its hellos are done
  std::shared_ptr<link_receiver> session_;
};

} // namespace

namespace {

/// "1.2.3.4" of "1.2.3.4:5", "::1" of "[::1]:5".
std::string ip_of(const std::string& address) {
  if (!address.empty() && address.front() == '[')
    return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

} // namespace

std::optional<std::string> session_server::core::refusal_locked(const std::string& ip) const {
  if (handshakes.size() >= cfg.max_pending_handshakes)
    return std::to_string(handshakes.size()) + " handshakes in progress (max_pending_handshakes)";
  if (handshakes.size() + sessions.size() >= cfg.max_sessions)
    return std::to_string(handshakes.size() + sessions.size()) + " sessions and handshakes (max_sessions)";
  if (auto i = per_peer.find(ip); i != per_peer.end() && i->second >= cfg.max_sessions_per_peer)
    return std::to_string(i->second) + " sessions and handshakes from " + ip + " (max_sessions_per_peer)";
  return std::nullopt;
}

void session_server::core::release_locked(const std::string& ip) {
  if (auto i = per_peer.find(ip); i != per_peer.end() && --i->second == 0)
    per_peer.erase(i);
}

void session_server::core::on_event(io_loop&, uint32_t) {
  for (;;) {
    auto lnk = listener->try_accept();
    if (!lnk || !*lnk)
      return; // nothing pending (or a transient failure: readiness tells us when to retry)
    auto& link = **lnk;
    auto ip = ip_of(link->peer().address);
    std::shared_ptr<accepting_input> hs;
    std::optional<std::string> refusal;
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (stopped) {
        link->abort();
        continue;
      }
      refusal = refusal_locked(ip);
      if (!refusal) {
        hs = std::make_shared<accepting_input>(weak_from_this(), link, cfg.options);
        handshakes.insert(hs);
        handshake_ips.emplace(hs.get(), ip);
        ++per_peer[ip];
      }
    }
    if (refusal) {
      // Counted before the close: whoever sees the close also sees the count.
      auto n = ++refused;
      link->abort();
      // Logged on the 1st, 2nd, 4th, 8th... refusal: a flood must not flood the log too.
      if ((n & (n - 1)) == 0)
        (*log_sink_of(cfg.options))("session_server: refused a connection from " + link->peer().address + ": "
                                    + *refusal + "; " + std::to_string(n) + " refused so far");
      continue;
    }
    if (cfg.on_link)
      cfg.on_link(link);
    link->start(hs, io);
    loop->post_at(std::chrono::steady_clock::now() + cfg.options.handshake_timeout,
                  [weak = std::weak_ptr<accepting_input>{hs}] {
                    if (auto h = weak.lock())
                      h->expire();
                  });
  }
}

bool session_server::core::finished(accepting_input* hs, const session_handle* session) {
  bool keep;
  std::string ip;
  {
    std::lock_guard<std::mutex> guard{mtx};
    std::erase_if(handshakes, [hs](const auto& p) { return p.get() == hs; });
    if (auto ip_entry = handshake_ips.extract(hs); !ip_entry.empty())
      ip = std::move(ip_entry.mapped());
    if (!session) { // failed, or handed its link to a session that already counts
      release_locked(ip);
      return true;
    }
    ++started;
    keep = !stopped;
    if (keep)
      sessions.emplace(session->actor.id(), caf::actor_cast<caf::weak_actor_ptr>(session->actor));
    else
      release_locked(ip);
  }
  if (!keep)
    return false;
  // Outside the lock: on an actor that has already terminated the functor runs at once.
  caf::actor_cast<caf::abstract_actor*>(session->actor)
    ->attach_functor([weak = weak_from_this(), id = session->actor.id(), ip] {
      if (auto c = weak.lock()) {
        std::lock_guard<std::mutex> guard{c->mtx};
        c->sessions.erase(id);
        c->release_locked(ip);
      }
    });
  if (cfg.on_session)
    cfg.on_session(*session);
  return true;
}

caf::expected<std::unique_ptr<session_server>> session_server::start(caf::actor_system& sys, config cfg) {
  auto listener = tcp_listener::bind(cfg.host, cfg.port, cfg.links);
  if (!listener)
    return std::move(listener.error());
  auto port = (*listener)->port();
  auto io = cfg.options.io ? cfg.options.io : default_io_reactor(sys);
  if (cfg.options.resumable && !cfg.options.registry)
    cfg.options.registry = std::make_shared<session_registry>();
  auto c = std::make_shared<core>(sys, std::move(cfg), std::move(*listener));
  c->io = io;
  c->loop = io->next_loop();
  if (!c->loop->add(c->listener->fd(), c))
    return make_system_error(errc::io_error, "cannot watch the listening socket", errno);
  return std::unique_ptr<session_server>{new session_server(std::move(c), port)};
}

session_server::~session_server() { stop(); }

size_t session_server::sessions_started() const { return core_->started.load(); }

size_t session_server::connections_refused() const { return core_->refused.load(); }

size_t session_server::handshakes_in_progress() const {
  std::lock_guard<std::mutex> guard{core_->mtx};
  return core_->handshakes.size();
}

size_t session_server::sessions_running() const {
  std::lock_guard<std::mutex> guard{core_->mtx};
  return core_->sessions.size();
}

void session_server::stop() {
  std::unordered_set<std::shared_ptr<accepting_input>> handshakes;
  std::unordered_map<caf::actor_id, caf::weak_actor_ptr> sessions;
  {
    std::lock_guard<std::mutex> guard{core_->mtx};
    if (core_->stopped)
      return;
    core_->stopped = true;
    handshakes.swap(core_->handshakes);
    sessions.swap(core_->sessions);
  }
  // No more connections: the listening socket closes once the loop has let go of it.
  core_->listener->shutdown();
  core_->loop->remove(core_->listener->fd(), core_.get());
  for (auto& hs : handshakes)
    hs->abort();
  for (auto& [id, w] : sessions)
    if (auto s = w.lock())
      caf::anon_send(caf::actor_cast<caf::actor>(s), stop_atom::value);
}

} // namespace vox
