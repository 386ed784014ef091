#include "bench/sessions.hpp"
#include "transport/tls.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/session_server.hpp"
#include "bench/child_process.hpp"
#include "bench/workloads.hpp"
#include "transport/tcp_link.hpp"

namespace voxbench {

namespace {

/// The client stops opening after this, so that it can still say how far it got before
/// the main process's limit kills it.
constexpr std::chrono::seconds client_open_limit{100};


struct open_session {
  vox::session_handle handle;
  vox::caller root; ///< holding the root caller keeps the session up
};

/// Connects, handshakes and makes one echo call; empty on success, else why not.
std::string open_one(caf::actor_system& sys, caf::scoped_actor& self, uint16_t port, const vox::payload& body,
                     const vox::link_options& links, open_session& out) {
  auto lnk = vox::tcp_connect("127.0.0.1", port, links);
  if (!lnk)
    return "connect: " + sys.render(lnk.error());
  auto s = vox::connect_session(sys, *lnk, bench_options());
  if (!s)
    return "handshake: " + sys.render(s.error());
  out.handle = *s;
  out.root = vox::caller{s->root};
  vox::outgoing_call call;
  call.method_id = 1;
  call.args = body;
  std::string err;
  self->request(out.root.driver(), std::chrono::seconds{10}, vox::call_atom::value, std::move(call))
    .receive(
      [&](vox::call_response& r) {
        if (!is_echo_of(r.ret, body))
          err = "a reply was not the echo of its call";
      },
      [&](caf::error& e) { err = "call: " + sys.render(e); });
  return err;
}

void wait_for_eof() {
  std::string line;
  while (std::getline(std::cin, line)) {
  }
}

} // namespace

int run_sessions_server(const sched_options& so, const std::string& certs) {
  caf::actor_system_config cfg;
  apply(cfg, so);
  caf::actor_system sys{cfg};
  vox::session_server::config sc;
  sc.host = "127.0.0.1";
  sc.port = 0;
  sc.options = bench_options();
  if (!certs.empty()) {
    vox::tls_config tc;
    tc.cert_file = certs + "/server.pem";
    tc.key_file = certs + "/server.key";
    auto ctx = vox::tls_context::server(tc);
    if (!ctx) {
      std::printf("sessions-error %s\n", sys.render(ctx.error()).c_str());
      return 1;
    }
    sc.links.tls = *ctx;
  }
  auto srv = vox::session_server::start(sys, sc);
  if (!srv) {
    std::printf("sessions-error the server cannot listen: %s\n", sys.render(srv.error()).c_str());
    return 1;
  }
  std::printf("sessions-server port %u\n", (*srv)->port());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) { // EOF: the parent is done (or died)
    if (line == "stats")
      std::printf("stats threads %ld rss-kb %ld sessions %zu\n", thread_count(), rss_kb(),
                  (*srv)->sessions_started());
    else
      std::printf("sessions-error unknown command: %s\n", line.c_str());
    std::fflush(stdout);
  }
  (*srv)->stop(); // ~actor_system then waits for every session
  return 0;
}

int run_sessions_client(uint16_t port, size_t n, const sched_options& so, const std::string& certs) {
  caf::actor_system_config cfg;
  apply(cfg, so);
  caf::actor_system sys{cfg};
  vox::link_options links;
  if (!certs.empty()) {
    vox::tls_config tc;
    tc.ca_file = certs + "/ca.pem";
    auto ctx = vox::tls_context::client(tc);
    if (!ctx) {
      std::printf("sessions-error %s\n", sys.render(ctx.error()).c_str());
      return 1;
    }
    links.tls = *ctx;
  }
  auto body = make_body();
  std::vector<open_session> sessions(n + 1);
  {
    // The warm-up session makes the server create what it builds once (its I/O reactor,
    // lazily initialised state) before the parent's "before" sample.
    caf::scoped_actor self{sys};
    if (auto err = open_one(sys, self, port, body, links, sessions[n]); !err.empty()) {
      std::printf("sessions-error warm-up session: %s\n", err.c_str());
      std::fflush(stdout);
      return 1;
    }
  }
  std::printf("warm\n");
  std::fflush(stdout);
  std::string line;
  if (!std::getline(std::cin, line) || line != "open")
    return 0;

  std::atomic<size_t> next{0}, opened{0};
  std::atomic<bool> failed{false};
  std::mutex mtx;
  std::string first_error;
  auto fail = [&](std::string why) {
    std::lock_guard<std::mutex> guard{mtx};
    if (!failed.exchange(true))
      first_error = std::move(why);
  };
  auto start = clock_type::now();
  auto deadline = start + client_open_limit;
  std::vector<std::thread> workers;
  for (size_t w = 0; w < std::min(n, session_open_parallelism); ++w)
    workers.emplace_back([&] {
      caf::scoped_actor self{sys};
      for (;;) {
        auto i = next.fetch_add(1);
        if (i >= n || failed.load())
          return;
        if (clock_type::now() > deadline) {
          fail("not all sessions opened within " + std::to_string(client_open_limit.count()) + " s");
          return;
        }
        if (auto err = open_one(sys, self, port, body, links, sessions[i]); !err.empty()) {
          fail("session " + std::to_string(i) + ": " + err);
          return;
        }
        ++opened;
      }
    });
  for (auto& w : workers)
    w.join();
  auto secs = seconds_since(start);
  if (failed)
    std::printf("sessions-error %s (%zu of %zu opened in %.1f s)\n", first_error.c_str(), opened.load(), n, secs);
  else
    std::printf("opened %zu seconds %.3f\n", n, secs);
  std::fflush(stdout);
  wait_for_eof();
  for (auto& s : sessions) {
    s.root.reset();
    stop_session(s.handle);
  }
  return failed ? 1 : 0;
}

sessions_result measure_sessions(size_t n, const std::vector<std::string>& child_args, std::chrono::seconds limit) {
  sessions_result out;
  auto deadline = clock_type::now() + limit;
  auto left = [&](std::chrono::milliseconds at_most) {
    auto l = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    return std::clamp(l, std::chrono::milliseconds{0}, at_most);
  };
  auto fail = [&](std::string why) {
    out.ok = false;
    out.error = std::move(why);
    return out;
  };
  auto args = [&](std::vector<std::string> a) {
    a.insert(a.end(), child_args.begin(), child_args.end());
    return a;
  };
  auto server = child_process::spawn(args({"sessions-server", "--sessions", std::to_string(n)}));
  if (!server)
    return fail("cannot start the server process");
  unsigned port = 0;
  auto line = server->read_line(left(std::chrono::seconds{15}));
  if (!line || std::sscanf(line->c_str(), "sessions-server port %u", &port) != 1)
    return fail("the server process did not start: " + line.value_or("no answer"));
  struct stats {
    long threads = 0, rss_kb = 0;
    size_t sessions = 0;
  };
  auto ask = [&]() -> std::optional<stats> {
    stats s;
    if (!server->write_line("stats"))
      return std::nullopt;
    auto l = server->read_line(left(std::chrono::seconds{10}));
    if (!l || std::sscanf(l->c_str(), "stats threads %ld rss-kb %ld sessions %zu", &s.threads, &s.rss_kb,
                          &s.sessions) != 3)
      return std::nullopt;
    return s;
  };

  auto client = child_process::spawn(
    args({"sessions-client", "--port", std::to_string(port), "--sessions", std::to_string(n)}));
  if (!client)
    return fail("cannot start the client process");
  line = client->read_line(left(std::chrono::seconds{30}));
  if (!line || *line != "warm")
    return fail("client: " + line.value_or("no warm-up session"));
  auto before = ask();
  if (!before)
    return fail("the server process did not report its stats");
  client->write_line("open");
  line = client->read_line(left(limit));
  double secs = 0;
  size_t opened = 0;
  if (!line)
    return fail("not all " + std::to_string(n) + " sessions were open within " + std::to_string(limit.count())
                + " s");
  if (std::sscanf(line->c_str(), "opened %zu seconds %lf", &opened, &secs) != 2 || opened != n)
    return fail("client: " + *line);
  auto after = ask();
  if (!after)
    return fail("the server process did not report its stats");
  if (after->sessions != n + 1)
    return fail("the server started " + std::to_string(after->sessions) + " sessions, expected "
                + std::to_string(n + 1) + " (with the warm-up one)");
  out.ok = true;
  out.sessions = n;
  out.open_seconds = secs;
  out.threads_before = before->threads;
  out.threads_after = after->threads;
  out.rss_before_kb = before->rss_kb;
  out.rss_after_kb = after->rss_kb;
  // Sessions end from the client side first (closing its sockets), then the server.
  auto client_end = client->finish(std::chrono::seconds{30});
  auto server_end = server->finish(std::chrono::seconds{30});
  if (client_end != "exit 0" || server_end != "exit 0")
    std::fprintf(stderr, "vox-bench: sessions row: the client ended with %s, the server with %s\n",
                 client_end.c_str(), server_end.c_str());
  return out;
}

} // namespace voxbench
