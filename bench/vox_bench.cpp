// vox-bench: vox sessions measured against a raw-TCP ping-pong floor taken in the same run.
//
//   vox-bench [--seconds S] [--warmup S] [--threads N] [--poll N] [--count N]
//       runs every benchmark and prints one table (stdout; progress on stderr)
//   vox-bench server [--host H] [--port N] [--raw-port M] [--threads N] [--poll N] [--until-eof] [--certs DIR]
//       the TCP server: vox sessions (echo root handler, echo acceptor) on --port, the raw
//       u32-LE framed echo on --raw-port (0 = ephemeral; the ports are printed), and the
//       vox service again on ephemeral ports served by a busy-polling reactor and with
//       resumable sessions and an operation store, and over TLS with DIR's server.pem/key
//       (scripts/make_certs.sh; the default run makes them); runs until SIGINT/SIGTERM, or with
//       --until-eof until its stdin closes
//   vox-bench rss [--count N] [--threads N] [--poll N]
//       (internal) the idle-connection RSS measurement in a fresh process
//   vox-bench sessions-server [--sessions N] [--threads N] [--poll N]
//   vox-bench sessions-client --port P [--sessions N] [--threads N] [--poll N]
//       (internal) the two sides of the idle-sessions row (see bench/sessions.hpp)
//
// The default run re-executes this binary (/proc/self/exe): as `rss`, as `server` for the
// TCP rows, and as `sessions-server` and `sessions-client` for the sessions row. Memory
// rows run both sessions in this process.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "bench/child_process.hpp"
#include "bench/common.hpp"
#include "bench/compression.hpp"
#include "bench/modes.hpp"
#include "bench/open_loop.hpp"
#include "bench/paired.hpp"
#include "bench/raw_tcp.hpp"
#include "bench/sessions.hpp"
#include "bench/table.hpp"
#include "bench/tls.hpp"
#include "bench/typed.hpp"
#include "bench/workloads.hpp"
#include "transport/tcp_link.hpp"

using namespace voxbench;

namespace {

/// Adds to each `hop` row its ratio to the `direct` row of the same name in this run
/// (and, for one call at a time, the latency that makes).
void compare_with_direct(std::vector<row>& rows, const std::string& hop, const std::string& direct) {
  for (auto& r : rows) {
    if (r.transport != hop || !r.ok)
      continue;
    auto d = std::find_if(rows.begin(), rows.end(),
                          [&](const row& x) { return x.transport == direct && x.name == r.name && x.ok; });
    if (d == rows.end() || d->value <= 0 || r.value <= 0)
      continue;
    char buf[96];
    bool rate = r.unit.size() > 2 && r.unit.compare(r.unit.size() - 2, 2, "/s") == 0;
    if (r.floor == floor_kind::ping_pong && rate)
      std::snprintf(buf, sizeof buf, "; %.2fx direct %s (latency %.2fx)", r.value / d->value, direct.c_str(),
                    d->value / r.value);
    else
      std::snprintf(buf, sizeof buf, "; %.2fx direct %s", r.value / d->value, direct.c_str());
    r.detail += buf;
  }
}

// -- default mode ------------------------------------------------------------------------

void progress(const std::string& what) {
  std::fprintf(stderr, "vox-bench: %s\n", what.c_str());
}

int run_all(const cli& o) {
  auto run_start = clock_type::now();
  std::string load = "?";
  if (std::ifstream in{"/proc/loadavg"}; in) { // the box is shared: say how busy it was
    std::string a, b, c;
    if (in >> a >> b >> c)
      load = a + " " + b + " " + c;
  }
  std::vector<row> rows;
  std::fprintf(stderr, "vox-bench: %zu-byte payloads, --threads %d, warm-up %.1f s + %.1f s per row, %ld cpus\n",
               payload_size, o.sched.threads, o.t.warmup_s, o.t.measure_s, sysconf(_SC_NPROCESSORS_ONLN));

  // Both children are started while this process is still single-threaded.
  // 5. RSS per idle virtual connection, in a fresh process (see run_rss).
  row rss_row{"RSS per idle vconn (both ends)", "memory", "KiB/vconn", false, false, 0, {}};
  row calls_row{"RSS per pending channel call (both ends)", "memory", "KiB/call", false, false, 0, {}};
  bool want_rss = o.wants(rss_row.name) || o.wants(calls_row.name);
  if (want_rss) {
    progress("RSS with " + std::to_string(o.count) + " idle virtual connections (child process)");
    auto args = std::vector<std::string>{"rss", "--count", std::to_string(o.count)};
    auto sa = sched_args(o);
    args.insert(args.end(), sa.begin(), sa.end());
    auto child = child_process::spawn(args);
    if (!child) {
      rss_row.detail = "FAILED: cannot start the rss process";
    } else {
      auto line = child->read_line(std::chrono::seconds{180});
      auto calls_line = child->read_line(std::chrono::seconds{120});
      auto ended = child->finish(std::chrono::seconds{30});
      long before = 0, after = 0;
      size_t n = 0;
      double secs = 0;
      if (line && std::sscanf(line->c_str(), "rss before-kb %ld after-kb %ld connections %zu open-seconds %lf",
                              &before, &after, &n, &secs) == 4 && n > 0) {
        rss_row.ok = true;
        rss_row.value = static_cast<double>(after - before) / static_cast<double>(n);
        char buf[160];
        std::snprintf(buf, sizeof buf, "%zu vconns open: RSS %ld -> %ld KiB (opened in %.2f s)", n, before,
                      after, secs);
        rss_row.detail = buf;
      } else {
        rss_row.detail = "FAILED: " + (line ? *line : std::string{"no answer"}) + " (rss process: " + ended + ")";
      }
      long threads_before = 0, threads_after = 0;
      if (calls_line && std::sscanf(calls_line->c_str(),
                                    "rss-calls before-kb %ld after-kb %ld calls %zu threads-before %ld threads-after %ld",
                                    &before, &after, &n, &threads_before, &threads_after) == 5 && n > 0) {
        calls_row.ok = true;
        calls_row.value = static_cast<double>(after - before) / static_cast<double>(n);
        char buf[160];
        std::snprintf(buf, sizeof buf, "%zu calls waiting for credit: RSS %ld -> %ld KiB, threads %ld -> %ld", n,
                      before, after, threads_before, threads_after);
        calls_row.detail = buf;
      } else {
        calls_row.detail = "FAILED: " + (calls_line ? *calls_line : std::string{"no answer"});
      }
    }
  }

  // The TCP server process: vox sessions and the raw echo.
  progress("starting the server process");
  auto certs = bench_certs::make();
  if (!certs)
    std::fprintf(stderr, "vox-bench: no TLS rows: %s\n", vox::describe(certs.error()).c_str());
  auto server_args = std::vector<std::string>{"server", "--port", "0", "--raw-port", "0", "--until-eof"};
  if (certs) {
    server_args.push_back("--certs");
    server_args.push_back(certs->dir());
  }
  auto sa = sched_args(o);
  server_args.insert(server_args.end(), sa.begin(), sa.end());
  auto server = child_process::spawn(server_args);
  unsigned vox_port = 0, raw_port = 0, busy_port = 0, retry_port = 0, zstd_port = 0, gateway_port = 0,
           gateway_session_port = 0, tls_port = 0;
  {
    auto line = server ? server->read_line(std::chrono::seconds{15}) : std::nullopt;
    if (!line
        || std::sscanf(line->c_str(),
                       "vox-bench server: vox-port %u raw-port %u busy-poll-port %u retry-port %u zstd-port %u "
                       "gateway-port %u gateway-session-port %u tls-port %u",
                       &vox_port, &raw_port, &busy_port, &retry_port, &zstd_port, &gateway_port, &gateway_session_port,
                       &tls_port)
             != 8) {
      std::fprintf(stderr, "vox-bench: the server process did not start (%s)\n",
                   server ? server->finish(std::chrono::seconds{5}).c_str() : "fork failed");
      return 1;
    }
  }

  // 1. Floor: raw TCP ping-pong, same u32-LE framing, blocking sockets, separate processes.
  progress("raw TCP ping-pong (floor)");
  auto floor_m = raw_tcp_ping_pong("127.0.0.1", static_cast<uint16_t>(raw_port), o.t);
  rows.push_back(rate_row("raw ping-pong (floor)", "tcp", "rt/s", "round trips", floor_m));
  floors fl;
  fl.ping_pong = floor_m.ok ? floor_m.rate() : 0;
  // 1b. Pipelined floor: 64 frames in flight on one raw socket, the same echo server.
  progress("raw TCP pipelined, 64 in flight (floor)");
  auto piped_m = raw_tcp_pipelined("127.0.0.1", static_cast<uint16_t>(raw_port), 64, o.t);
  rows.push_back(rate_row("raw pipelined (floor)", "tcp", "msgs/s", "echoes", piped_m, floor_kind::pipelined));
  fl.pipelined = piped_m.ok ? piped_m.rate() : 0;

  {
    caf::actor_system_config cfg;
    apply(cfg, o.sched);
    caf::actor_system sys{cfg};
    progress("connecting sessions (memory link, TCP to the server process)");
    auto mem = start_memory_sessions(sys);
    // A session to `port` on reactor `io` (null: the system's default one); only the
    // session keeps `io` alive, so it ends with the session.
    auto connect_tcp = [&](unsigned port, vox::io_reactor_ptr io, bool retry = false,
                           vox::conduit_mode conduit = vox::conduit_mode::bare,
                           vox::compression_options compression = {},
                           vox::link_options links = {}) -> caf::expected<vox::session_handle> {
      auto lnk = vox::tcp_connect("127.0.0.1", static_cast<uint16_t>(port), links);
      if (!lnk)
        return lnk.error();
      auto opts = bench_options();
      opts.compression = compression.mode == vox::compression_mode::off ? o.compression : compression;
      opts.io = std::move(io);
      opts.resumable = retry;
      opts.retry = retry;
      opts.conduit = conduit;
      return vox::connect_session(sys, *lnk, opts);
    };
    auto tcp = connect_tcp(vox_port, o.tcp_inline ? vox::io_reactor::start(sys, vox::io_config(1, *o.tcp_inline)) : nullptr);
    // The same, with a reactor that also runs the driving actor on its I/O thread.
    auto tcp_inline = connect_tcp(vox_port, vox::io_reactor::start(sys, vox::io_config(1, vox::io_inline::all_actors)));
    // And to the server's busy-polling port, with a busy-polling reactor here too.
    auto tcp_busy = connect_tcp(busy_port, busy_poll_reactor(sys, o.sched));
    // And a resumable one whose calls carry operation ids through the server's store.
    auto tcp_retry = connect_tcp(retry_port, nullptr, true);
    // And one over the stable conduit (sequenced, acknowledged frames kept for replay).
    auto tcp_stable = connect_tcp(vox_port, nullptr, false, vox::conduit_mode::stable);
    // And one whose link is zstd-compressed.
    auto zstd = o.compression;
    zstd.mode = vox::compression_mode::require;
    auto tcp_zstd = connect_tcp(zstd_port, nullptr, false, vox::conduit_mode::bare, zstd);
    // And one through a gateway hop (the server process splices it to its own vox port).
    auto tcp_gateway = connect_tcp(gateway_port, nullptr);
    auto tcp_gateway_session = connect_tcp(gateway_session_port, nullptr);
    // And one over TLS.
    vox::link_options tls_links;
    if (certs) {
      if (auto ctx = certs->client())
        tls_links.tls = *ctx;
    }
    auto tcp_tls = tls_links.tls ? connect_tcp(tls_port, nullptr, false, vox::conduit_mode::bare, {}, tls_links)
                                 : caf::expected<vox::session_handle>{vox::make_error(vox::errc::tls_failed, "no certificates")};
    auto failed_row = [&](std::string name, std::string transport, std::string unit, const caf::error& e) {
      row r{std::move(name), std::move(transport), std::move(unit), true, false, 0, {}};
      r.detail = "FAILED: session setup: " + sys.render(e);
      return r;
    };
    {
      vox::caller mem_root, tcp_root, tcp_inline_root, tcp_busy_root, tcp_retry_root, tcp_stable_root, tcp_zstd_root,
        tcp_gateway_root, tcp_gateway_session_root, tcp_tls_root;
      if (mem)
        mem_root = vox::caller{mem->client.root};
      if (tcp)
        tcp_root = vox::caller{tcp->root};
      if (tcp_inline)
        tcp_inline_root = vox::caller{tcp_inline->root};
      if (tcp_busy)
        tcp_busy_root = vox::caller{tcp_busy->root};
      if (tcp_retry)
        tcp_retry_root = vox::caller{tcp_retry->root};
      if (tcp_stable)
        tcp_stable_root = vox::caller{tcp_stable->root};
      if (tcp_zstd)
        tcp_zstd_root = vox::caller{tcp_zstd->root};
      if (tcp_gateway)
        tcp_gateway_root = vox::caller{tcp_gateway->root};
      if (tcp_gateway_session)
        tcp_gateway_session_root = vox::caller{tcp_gateway_session->root};
      if (tcp_tls)
        tcp_tls_root = vox::caller{tcp_tls->root};
      struct transport {
        const char* name;
        bool up;
        const vox::caller* root;
        const caf::error* err;
      };
      caf::error no_error;
      transport transports[] = {{"memory", static_cast<bool>(mem), &mem_root, mem ? &no_error : &mem.error()},
                                {"tcp", static_cast<bool>(tcp), &tcp_root, tcp ? &no_error : &tcp.error()},
                                {"tcp, inline", static_cast<bool>(tcp_inline), &tcp_inline_root,
                                 tcp_inline ? &no_error : &tcp_inline.error()},
                                {"tcp, busy-poll", static_cast<bool>(tcp_busy), &tcp_busy_root,
                                 tcp_busy ? &no_error : &tcp_busy.error()},
                                {"tcp, retry", static_cast<bool>(tcp_retry), &tcp_retry_root,
                                 tcp_retry ? &no_error : &tcp_retry.error()},
                                {"tcp, stable", static_cast<bool>(tcp_stable), &tcp_stable_root,
                                 tcp_stable ? &no_error : &tcp_stable.error()},
                                {"tcp, zstd", static_cast<bool>(tcp_zstd), &tcp_zstd_root,
                                 tcp_zstd ? &no_error : &tcp_zstd.error()},
                                {"tcp, gateway", static_cast<bool>(tcp_gateway), &tcp_gateway_root,
                                 tcp_gateway ? &no_error : &tcp_gateway.error()},
                                {"tcp, gateway/session", static_cast<bool>(tcp_gateway_session),
                                 &tcp_gateway_session_root,
                                 tcp_gateway_session ? &no_error : &tcp_gateway_session.error()},
                                {"tcp, tls", static_cast<bool>(tcp_tls), &tcp_tls_root,
                                 tcp_tls ? &no_error : &tcp_tls.error()}};
      // 2. Call round trips/s with 1 call outstanding (and each call's round-trip time).
      // 3. Calls/s with 64 calls kept in flight on one connection.
      // "call, 64 outstanding" over TCP, or --max-rate: what the open loop offers a share of.
      double max_tcp_rate = o.max_rate;
      for (int depth : {1, 64}) {
        auto name = "call, " + std::to_string(depth) + " outstanding";
        auto fk = depth > 1 ? floor_kind::pipelined : floor_kind::ping_pong;
        for (auto& tr : transports) {
          if (!o.wants(name + " (" + tr.name + ")"))
            continue;
          if (!tr.up) {
            rows.push_back(failed_row(name, tr.name, "calls/s", *tr.err));
            rows.back().floor = fk;
            continue;
          }
          progress(name + " (" + tr.name + ")");
          auto m = measure_calls(sys, *tr.root, depth, o.t);
          if (depth == 64 && tr.root == &tcp_root && m.ok && o.max_rate <= 0)
            max_tcp_rate = m.rate();
          rows.push_back(rate_row(name, tr.name, "calls/s", "calls", m, fk));
        }
      }
      // 2b. One outstanding call over TCP in turns with the ping-pong floor.
      if (o.paired > 0 && tcp && o.wants("call, 1 outstanding, paired (tcp)")) {
        progress("call, 1 outstanding, paired with the floor (tcp)");
        auto p = measure_paired(
          o.paired, o.t, [&](timing s) { return measure_calls(sys, tcp_root, 1, s); },
          [&](timing s) { return raw_tcp_ping_pong("127.0.0.1", static_cast<uint16_t>(raw_port), s); });
        rows.push_back(paired_row("call, 1 outstanding, paired", "tcp", "calls/s", p));
      }
      // 3b. Open loop over TCP: a fixed schedule at shares of max_tcp_rate.
      for (int pct : {25, 50, 80}) {
        auto name = "open loop " + std::to_string(pct) + "% of max";
        if (!o.wants(name))
          continue;
        row r{name, "tcp", "calls/s", true, false, 0, {}, floor_kind::pipelined};
        if (!tcp) {
          r.detail = "FAILED: session setup: " + sys.render(tcp.error());
        } else if (max_tcp_rate <= 0) {
          r.detail = "FAILED: no \"call, 64 outstanding\" rate over TCP to offer a share of";
        } else {
          double offered = max_tcp_rate * pct / 100.0;
          progress(name + " (tcp, " + std::to_string(static_cast<long>(offered)) + " calls/s offered)");
          r = open_loop_row(name, offered, measure_open_loop(sys, tcp_root, offered, o.t));
        }
        rows.push_back(r);
      }
      // 4. Virtual connection open (round trip to the peer's acceptor) + close, one at a time.
      for (auto& tr : transports) {
        if (!o.wants(std::string{"vconn open+close ("} + tr.name + ")"))
          continue;
        if (!tr.up) {
          rows.push_back(failed_row("vconn open+close", tr.name, "vconns/s", *tr.err));
          continue;
        }
        progress(std::string{"vconn open+close ("} + tr.name + ")");
        rows.push_back(rate_row("vconn open+close", tr.name, "vconns/s", "opens+closes",
                                measure_open_close(sys, tr.root->connection(), o.t)));
      }
      // 5. Typed calls (Vec<u8> echo through a service_dispatcher and client<S>).
      for (int depth : {1, 64}) {
        auto name = "typed call, " + std::to_string(depth) + " outstanding";
        for (auto& tr : transports) {
          if (!tr.up || !o.wants(name + " (" + tr.name + ")"))
            continue;
          progress(name + " (" + tr.name + ")");
          rows.push_back(rate_row(name, tr.name, "calls/s", "calls", measure_typed_calls(sys, *tr.root, depth, o.t),
                                  depth > 1 ? floor_kind::pipelined : floor_kind::ping_pong));
        }
      }
      // 6. Channel items, server to client, with credit (16 initial, grants of 8).
      for (auto& tr : transports) {
        if (!tr.up || !o.wants(std::string{"channel items, one way ("} + tr.name + ")"))
          continue;
        progress(std::string{"channel items ("} + tr.name + ")");
        rows.push_back(rate_row("channel items, one way", tr.name, "items/s", "items",
                                measure_channel_items(sys, *tr.root, o.t), floor_kind::pipelined));
      }
    }
    // 7b. Sessions set up (connect, handshakes, one call) and torn down, one at a time.
    for (auto [transport, port, links] : {std::tuple{"tcp", vox_port, vox::link_options{}},
                                          std::tuple{"tcp, tls", tls_port, tls_links}}) {
      if (!o.wants(std::string{"sessions set up ("} + transport + ")"))
        continue;
      if (std::string{transport} == "tcp, tls" && !tls_links.tls) {
        row r{"sessions set up", transport, "sessions/s", true, false, 0, {}};
        r.detail = "FAILED: no certificates";
        rows.push_back(r);
        continue;
      }
      progress(std::string{"sessions set up ("} + transport + ")");
      rows.push_back(rate_row("sessions set up", transport, "sessions/s", "sessions",
                              measure_session_setup(sys, static_cast<uint16_t>(port), links, o.t)));
    }
    // 8. What compression saves on the wire, and buys on a 10 MB/s link.
    if (o.wants("wire bytes") || o.wants("MB/s link")) {
      progress("compression: wire bytes and a throttled link (in this process)");
      auto zrows = compression_rows(sys, o.compression.level, 10e6, o.t);
      rows.insert(rows.end(), zrows.begin(), zrows.end());
    }
    if (mem) {
      stop_session(mem->client);
      stop_session(mem->server);
    }
    if (tcp)
      stop_session(*tcp);
    if (tcp_inline)
      stop_session(*tcp_inline);
    if (tcp_busy)
      stop_session(*tcp_busy);
    progress("stopping the actor system");
  } // ~actor_system waits for every session and driver

  progress("stopping the server process");
  auto ended = server->finish(std::chrono::seconds{15});
  if (ended != "exit 0")
    std::fprintf(stderr, "vox-bench: the server process ended with %s\n", ended.c_str());
  if (want_rss) {
    rows.push_back(rss_row);
    rows.push_back(calls_row);
  }

  // 7. Idle TCP sessions against one session_server, client and server in their own
  // processes (started now that this process runs nothing else).
  if (o.wants(sessions_row_name + std::string{" (tcp)"})) {
    progress("sessions: " + std::to_string(o.sessions) + " idle TCP sessions (two child processes)");
    rows.push_back(sessions_row(measure_sessions(o.sessions, sched_args(o), std::chrono::seconds{120})));
  }
  if (certs && o.wants(sessions_row_name + std::string{" (tcp, tls)"})) {
    progress("sessions: " + std::to_string(o.sessions) + " idle TLS sessions (two child processes)");
    auto args = sched_args(o);
    args.insert(args.end(), {"--certs", certs->dir()});
    rows.push_back(sessions_row(measure_sessions(o.sessions, args, std::chrono::seconds{180}), "tcp, tls"));
  }

  std::printf("vox-bench: %zu-byte payloads; --threads %d; each rate row: %.1f s warm-up, then %.1f s counted; "
              "total run %.1f s; %ld cpus, load average at start %s\n",
              payload_size, o.sched.threads, o.t.warmup_s, o.t.measure_s, seconds_since(run_start),
              sysconf(_SC_NPROCESSORS_ONLN), load.c_str());
  compare_with_direct(rows, "tcp, gateway", "tcp");
  compare_with_direct(rows, "tcp, gateway/session", "tcp");
  compare_with_direct(rows, "tcp, tls", "tcp");
  print_table(rows, fl);
  bool all_ok = true;
  for (auto& r : rows)
    all_ok = all_ok && r.ok;
  return all_ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  cli o;
  if (auto status = parse(argc, argv, o))
    return *status;
  if (o.mode == "server")
    return run_server(o);
  if (o.mode == "rss")
    return run_rss(o);
  if (o.mode == "sessions-server")
    return run_sessions_server(o.sched, o.certs);
  if (o.mode == "sessions-client")
    return run_sessions_client(o.port, o.sessions, o.sched, o.certs);
  return run_all(o);
}
