// vox-gateway: accepts vox sessions and forwards every connection of each to an upstream
// vox server, without decoding a call (actors/proxy.hpp).
//
//   vox-gateway --listen HOST:PORT --upstream HOST:PORT [--upstream-per-session] [--keepalive MS]
//               [--log-splices]
//
// Prints LISTEN_ADDR=HOST:PORT once it accepts, and UPSTREAM=HOST:PORT once its upstream
// session is up; ends cleanly on SIGINT or SIGTERM (exit status 0).
//
// One upstream session carries everything: each downstream connection, root or virtual,
// is spliced to a virtual connection of its own that the gateway opens upstream (the
// ConnectionOpen carries the downstream open's metadata, NO_PROPAGATE entries removed).
// The upstream server must accept virtual connections and serve its service on them, as
// `vox-testbed serve` does. If the upstream session ends, every spliced connection
// closes, new downstream sessions are turned away, and the gateway dials again (backoff
// 50 ms doubling to 2 s) until it is back.
//
// Sessions on both sides are resumable and announce retry. When a link breaks, the session
// on that side resumes (the gateway dials the upstream again; a client dials the gateway
// again) and the splices cut the link on the other side, so that the client and the
// server both see the break and each ends its channels and retries its own calls, as
// over a direct link. Operation ids pass through; the upstream server runs a call that
// is sent again once.
//
// --upstream-per-session: each downstream session gets an upstream session of its own
// instead (root spliced to root, each virtual connection to one opened there): clients
// are isolated from each other, at the cost of a TCP connection and a handshake each.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "actors/gateway.hpp"
#include "actors/session_server.hpp"
#include "apps/cli.hpp"

using namespace vox;
using namespace std::chrono_literals;

namespace {

const char* const usage_text
  = "usage: vox-gateway --listen HOST:PORT --upstream HOST:PORT [--upstream-per-session] [--keepalive MS]\n"
    "                   [--log-splices]\n";

struct arguments {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;
  std::string upstream_host;
  uint16_t upstream_port = 0;
  std::optional<keepalive_options> keepalive = cli::default_keepalive;
  bool log_splices = false;
  bool per_session = false;
};

void log_line(const std::string& line) {
  std::fprintf(stderr, "vox-gateway: %s\n", line.c_str());
}

/// A session to the upstream server; `settings` are our root's (the client's, in the
/// per-session mode: ids pass through, so our parity upstream is the client's).
caf::expected<session_handle> dial(caf::actor_system& sys, const arguments& a, connection_settings settings = {}) {
  auto lnk = tcp_connect(a.upstream_host, a.upstream_port);
  if (!lnk)
    return std::move(lnk.error());
  session_options opts;
  opts.settings = settings;
  opts.keepalive = a.keepalive;
  opts.log = log_line;
  // A broken upstream link resumes on a new one, and each splice passes the break on to
  // its client (actors/proxy.hpp), which then ends its channels and retries its calls.
  opts.resumable = true;
  opts.retry = true;
  opts.reconnect = [host = a.upstream_host, port = a.upstream_port] { return tcp_connect(host, port); };
  return connect_session(sys, *lnk, opts);
}

/// The upstream session, redialled by `keep` whenever it ends. Shared with the
/// sessions' acceptors and the upstream session's exit hook, which may run after `run`
/// returned.
class upstream : public std::enable_shared_from_this<upstream> {
public:
  upstream(caf::actor_system& sys, arguments a) : sys_(sys), args_(std::move(a)) {}

  /// The live upstream session, if any.
  std::optional<session_actor> current() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!alive_)
      return std::nullopt;
    return actor_;
  }

  /// Dials until connected or stopped; true once connected.
  bool connect() {
    auto delay = 50ms;
    for (;;) {
      auto s = dial(sys_, args_);
      if (s) {
        adopt(s->actor);
        return true;
      }
      log_line("upstream " + args_.upstream_host + ":" + std::to_string(args_.upstream_port) + ": "
               + describe(s.error()) + " (trying again)");
      std::unique_lock<std::mutex> guard{mtx_};
      if (cv_.wait_for(guard, delay, [this] { return stopping_; }))
        return false;
      delay = std::min<std::chrono::milliseconds>(delay * 2, 2s);
    }
  }

  /// Redials whenever the session ends, until `stop`.
  void keep() {
    for (;;) {
      {
        std::unique_lock<std::mutex> guard{mtx_};
        cv_.wait(guard, [this] { return stopping_ || !alive_; });
        if (stopping_)
          return;
      }
      log_line("upstream session ended; dialling again");
      if (!connect())
        return;
    }
  }

  void stop() {
    std::optional<session_actor> s;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
      if (alive_)
        s = actor_;
    }
    cv_.notify_all();
    if (s)
      caf::anon_send(*s, stop_atom::value);
  }

private:
  void adopt(const session_actor& s) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      actor_ = s;
      alive_ = true;
    }
    std::printf("UPSTREAM=%s:%u\n", args_.upstream_host.c_str(), args_.upstream_port);
    std::fflush(stdout);
    caf::actor_cast<caf::abstract_actor*>(s)->attach_functor([weak = weak_from_this(), id = s.id()] {
      auto self = weak.lock();
      if (!self)
        return;
      {
        std::lock_guard<std::mutex> guard{self->mtx_};
        if (self->actor_.id() != id)
          return;
        self->alive_ = false;
      }
      self->cv_.notify_all();
    });
  }

  caf::actor_system& sys_;
  const arguments args_;
  std::mutex mtx_;
  std::condition_variable cv_;
  session_actor actor_;
  bool alive_ = false;
  bool stopping_ = false;
};

/// The downstream side, the same in both modes.
session_server::config downstream_config(const arguments& a) {
  session_server::config cfg;
  cfg.host = a.listen_host;
  cfg.port = a.listen_port;
  cfg.options.keepalive = a.keepalive;
  cfg.options.log = log_line;
  // Clients resume through us: a splice cuts the other link when one of its links
  // resumed, so a break on either side of the gateway is seen on both (actors/proxy.hpp).
  cfg.options.resumable = true;
  // Operation ids pass through untouched, and the upstream server keeps the store that
  // runs a call sent again once: announcing retry lets clients send them.
  cfg.options.retry = true;
  return cfg;
}

/// Serves `cfg` until SIGINT or SIGTERM; the exit status.
int serve(caf::actor_system& sys, const session_server::config& cfg) {
  auto srv = session_server::start(sys, cfg);
  if (!srv) {
    log_line(describe(srv.error()));
    return 1;
  }
  std::printf("LISTEN_ADDR=%s:%u\n", cfg.host.c_str(), (*srv)->port());
  std::fflush(stdout);
  cli::wait_for_stop_signal();
  (*srv)->stop();
  return 0;
}

int run(caf::actor_system& sys, const arguments& a) {
  std::function<void(const std::string&)> splice_log;
  if (a.log_splices)
    splice_log = log_line;
  auto cfg = downstream_config(a);
  if (a.per_session) {
    forward_sessions(
      sys, cfg, [&sys, a](const connection_settings& client) { return dial(sys, a, client); }, splice_log);
    return serve(sys, cfg);
  }
  auto up = std::make_shared<upstream>(sys, a);
  if (!up->connect())
    return 1;
  std::thread keeper{[up] { up->keep(); }};
  forward_connections(sys, cfg, [up] { return up->current(); }, splice_log);
  auto status = serve(sys, cfg);
  up->stop();
  keeper.join();
  return status;
}

} // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && (std::string{argv[1]} == "--help" || std::string{argv[1]} == "-h"))
    return std::fputs(usage_text, stdout), 0;
  arguments args;
  cli::options opts{"vox-gateway", usage_text};
  opts.address("--listen", args.listen_host, args.listen_port)
    .address("--upstream", args.upstream_host, args.upstream_port)
    .required("--upstream")
    .keepalive("--keepalive", args.keepalive)
    .flag("--log-splices", args.log_splices)
    .flag("--upstream-per-session", args.per_session);
  if (auto status = opts.parse(argc, argv, 1))
    return *status;
  cli::block_stop_signals(); // before the actor system's threads exist: they inherit the mask
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  return run(sys, args);
}
