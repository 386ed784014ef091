#include "bench/modes.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <optional>
#include <vector>

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "actors/gateway.hpp"
#include "actors/session_server.hpp"
#include "bench/raw_tcp.hpp"
#include "bench/tls.hpp"
#include "bench/typed.hpp"
#include "bench/workloads.hpp"
#include "transport/tcp_link.hpp"

namespace voxbench {

// -- server mode -------------------------------------------------------------------------

int run_server(const cli& o) {
  // Signals are taken from a signalfd: block them before any thread exists.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  if (sfd < 0) {
    std::perror("vox-bench server: signalfd");
    return 1;
  }
  caf::actor_system_config cfg;
  apply(cfg, o.sched);
  caf::actor_system sys{cfg};
  vox::session_server::config sc;
  sc.host = o.host;
  sc.port = o.port;
  sc.options = bench_options();
  sc.options.compression = o.compression;
  auto srv = vox::session_server::start(sys, sc);
  if (!srv) {
    std::fprintf(stderr, "vox-bench server: cannot listen on %s:%u: %s\n", o.host.c_str(), o.port,
                 sys.render(srv.error()).c_str());
    return 1;
  }
  // The same service on an ephemeral port served by a busy-polling reactor.
  auto busy_sc = sc;
  busy_sc.port = 0;
  busy_sc.options.io = busy_poll_reactor(sys, o.sched);
  auto busy_srv = vox::session_server::start(sys, busy_sc);
  if (!busy_srv) {
    std::fprintf(stderr, "vox-bench server: cannot listen on %s: %s\n", o.host.c_str(),
                 sys.render(busy_srv.error()).c_str());
    return 1;
  }
  busy_sc.options.io.reset();
  // And on another with resumable sessions and an operation store (the "tcp, retry" rows).
  auto retry_sc = sc;
  retry_sc.port = 0;
  retry_sc.options.resumable = true;
  retry_sc.options.retry = true;
  auto retry_srv = vox::session_server::start(sys, retry_sc);
  if (!retry_srv) {
    std::fprintf(stderr, "vox-bench server: cannot listen on %s: %s\n", o.host.c_str(),
                 sys.render(retry_srv.error()).c_str());
    return 1;
  }
  // And on one that compresses (the "tcp, zstd" rows).
  auto zstd_sc = sc;
  zstd_sc.port = 0;
  zstd_sc.options.compression.mode = vox::compression_mode::prefer;
  auto zstd_srv = vox::session_server::start(sys, zstd_sc);
  if (!zstd_srv) {
    std::fprintf(stderr, "vox-bench server: cannot listen on %s: %s\n", o.host.c_str(),
                 sys.render(zstd_srv.error()).c_str());
    return 1;
  }
  // And over TLS (the "tcp, tls" rows), with the certificates the parent made.
  auto tls_sc = sc;
  tls_sc.port = 0;
  if (!o.certs.empty()) {
    vox::tls_config tc;
    tc.cert_file = o.certs + "/server.pem";
    tc.key_file = o.certs + "/server.key";
    auto ctx = vox::tls_context::server(tc);
    if (!ctx) {
      std::fprintf(stderr, "vox-bench server: %s\n", sys.render(ctx.error()).c_str());
      return 1;
    }
    tls_sc.links.tls = *ctx;
  }
  auto tls_srv = vox::session_server::start(sys, tls_sc);
  if (!tls_srv) {
    std::fprintf(stderr, "vox-bench server: cannot listen on %s: %s\n", o.host.c_str(),
                 sys.render(tls_srv.error()).c_str());
    return 1;
  }
  // And a gateway hop in front of the plain port (the "tcp, gateway" rows): every
  // connection of a session on gateway-port is spliced to a virtual connection of one
  // upstream session, dialled over loopback to vox-port in this same process.
  auto up_link = vox::tcp_connect(o.host, (*srv)->port());
  auto up = up_link ? vox::connect_session(sys, *up_link, bench_options())
                    : caf::expected<vox::session_handle>{up_link.error()};
  if (!up) {
    std::fprintf(stderr, "vox-bench server: the gateway's upstream session: %s\n", sys.render(up.error()).c_str());
    return 1;
  }
  auto gw_sc = sc;
  gw_sc.port = 0;
  vox::forward_connections(sys, gw_sc, [a = up->actor] { return std::optional{a}; });
  auto gw_srv = vox::session_server::start(sys, gw_sc);
  if (!gw_srv) {
    std::fprintf(stderr, "vox-bench server: cannot listen on %s: %s\n", o.host.c_str(),
                 sys.render(gw_srv.error()).c_str());
    return 1;
  }
  // The same hop with an upstream session per client (forward_sessions).
  auto gws_sc = sc;
  gws_sc.port = 0;
  vox::forward_sessions(sys, gws_sc,
                        [&sys, host = o.host, port = (*srv)->port()](
                          const vox::connection_settings& client) -> caf::expected<vox::session_handle> {
                          auto lnk = vox::tcp_connect(host, port);
                          if (!lnk)
                            return std::move(lnk.error());
                          auto opts = bench_options();
                          opts.settings = client;
                          return vox::connect_session(sys, *lnk, opts);
                        });
  auto gws_srv = vox::session_server::start(sys, gws_sc);
  if (!gws_srv) {
    std::fprintf(stderr, "vox-bench server: cannot listen on %s: %s\n", o.host.c_str(),
                 sys.render(gws_srv.error()).c_str());
    return 1;
  }
  auto raw = raw_echo_server::start(o.host, o.raw_port);
  if (!raw)
    return 1; // srv's destructor stops it
  std::printf("vox-bench server: vox-port %u raw-port %u busy-poll-port %u retry-port %u zstd-port %u gateway-port %u "
              "gateway-session-port %u tls-port %u\n",
              (*srv)->port(), raw->port(), (*busy_srv)->port(), (*retry_srv)->port(), (*zstd_srv)->port(),
              (*gw_srv)->port(), (*gws_srv)->port(), (*tls_srv)->port());
  std::fflush(stdout);
  pollfd fds[2] = {{sfd, POLLIN, 0}, {0, POLLIN, 0}};
  for (;;) {
    int r = ::poll(fds, o.until_eof ? 2 : 1, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 || fds[0].revents != 0)
      break;
    if (o.until_eof && fds[1].revents != 0) {
      char buf[64];
      auto n = ::read(0, buf, sizeof buf);
      if (n <= 0 && !(n < 0 && errno == EINTR))
        break; // the parent closed our stdin (or died)
    }
  }
  (*srv)->stop(); // asks every session to end; ~actor_system waits for them
  (*busy_srv)->stop();
  (*retry_srv)->stop();
  (*zstd_srv)->stop();
  (*gw_srv)->stop();
  (*gws_srv)->stop();
  (*tls_srv)->stop();
  caf::anon_send(up->actor, vox::stop_atom::value);
  raw->stop();
  ::close(sfd);
  return 0;
}

// -- rss mode ----------------------------------------------------------------------------

// RSS per idle virtual connection: `count` opened over a memory link and kept open with a
// caller each; both sessions (and so both ends of every connection) live in this process.
int run_rss(const cli& o) {
  caf::actor_system_config cfg;
  apply(cfg, o.sched);
  caf::actor_system sys{cfg};
  auto mem = start_memory_sessions(sys);
  if (!mem) {
    std::printf("rss-error memory sessions: %s\n", sys.render(mem.error()).c_str());
    return 1;
  }
  int rc = 1;
  {
    // Warm-up: exercise open/close once so lazily built state is not counted.
    auto warm = measure_open_close(sys, mem->client.root, timing{0.0, 0.2});
    auto before = rss_kb();
    auto opened = open_many(sys, mem->client.root, o.count, 64, std::chrono::seconds{120});
    auto after = rss_kb();
    auto ci = session_info_of(sys, mem->client, std::chrono::seconds{10});
    auto si = session_info_of(sys, mem->server, std::chrono::seconds{10});
    if (!warm.ok) {
      std::printf("rss-error warm-up: %s\n", warm.error.c_str());
    } else if (!opened.error.empty()) {
      std::printf("rss-error %s\n", opened.error.c_str());
    } else if (!ci || !si || ci->active_connections != o.count + 1 || si->active_connections != o.count + 1) {
      std::printf("rss-error expected %zu active connections on each side, got %zu and %zu\n", o.count + 1,
                  ci ? ci->active_connections : 0, si ? si->active_connections : 0);
    } else {
      std::printf("rss before-kb %ld after-kb %ld connections %zu open-seconds %.3f\n", before, after,
                  opened.callers.size(), opened.seconds);
      std::fflush(stdout);
      // Then 64 channel calls on each of the first 50 connections, left waiting for
      // credit: what a call of a method with channels costs while it is pending.
      std::vector<vox::caller> first(opened.callers.begin(),
                                     opened.callers.begin() + static_cast<long>(std::min<size_t>(50, opened.callers.size())));
      auto threads_before = thread_count();
      auto calls_before = rss_kb();
      auto pending = start_pending_channel_calls(sys, first, 64);
      if (pending.error.empty()) {
        std::printf("rss-calls before-kb %ld after-kb %ld calls %zu threads-before %ld threads-after %ld\n",
                    calls_before, rss_kb(), pending.ends.size(), threads_before, thread_count());
        rc = 0;
      } else {
        std::printf("rss-error %s\n", pending.error.c_str());
      }
    }
    std::fflush(stdout);
    stop_session(mem->client);
    stop_session(mem->server);
  } // the callers go here; the sessions already ended
  return rc;
}

} // namespace voxbench
