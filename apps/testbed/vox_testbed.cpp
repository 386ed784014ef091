// vox-testbed: the Testbed conformance service (testbed-service.md) over TCP.
//
//   vox-testbed serve --listen HOST:PORT | --port N [--keepalive MS]
//       serves Testbed on the root and on every virtual connection a client opens; prints
//       LISTEN_ADDR=HOST:PORT when ready (port 0 picks a free port); stops on SIGTERM/SIGINT
//   vox-testbed client --connect HOST:PORT --scenario NAME|all [--keepalive MS]
//       runs client scenarios, one "OK name" / "FAIL name: reason" line each; exit 0 only
//       if all pass
//   vox-testbed list
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <pthread.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"

using namespace vox;

namespace {

std::string arg(int argc, char** argv, const char* name, std::string fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return fallback;
}

int usage() {
  std::fputs("usage: vox-testbed serve (--listen HOST:PORT | --port N) [--keepalive MS]\n"
             "       vox-testbed client --connect HOST:PORT --scenario NAME|all [--keepalive MS]\n"
             "       vox-testbed list\n",
             stderr);
  return 2;
}

/// The whole of `text` as a number in [0, max]: a typo is a usage error, never a crash
/// (std::stoi throws) nor a silently truncated port.
template <class T>
std::optional<T> number(const std::string& text, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || value > max)
    return std::nullopt;
  return value;
}

/// Keepalive: ping well inside the 30 s after which some peers drop a silent session.
/// Outer nullopt: not a number; inner nullopt: 0, keepalive off.
std::optional<std::optional<keepalive_options>> keepalive(int argc, char** argv) {
  auto ms = number<uint32_t>(arg(argc, argv, "--keepalive", "10000"), 3'600'000);
  if (!ms)
    return std::nullopt;
  if (*ms == 0)
    return std::optional<keepalive_options>{};
  return keepalive_options{std::chrono::milliseconds{*ms}, std::chrono::milliseconds{3 * int64_t{*ms}}};
}

bool split(const std::string& addr, std::string& host, uint16_t& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  host = addr.substr(0, colon);
  auto p = number<uint16_t>(addr.substr(colon + 1), 65535);
  if (!p)
    return false;
  port = *p;
  return true;
}

/// SIGTERM and SIGINT, blocked in every thread and taken by sigwait in main: no handler,
/// no lost wake-up between a flag check and pause(), no signal landing on a CAF thread.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

int serve(caf::actor_system& sys, int argc, char** argv) {
  session_server::config cfg;
  auto listen = arg(argc, argv, "--listen", "127.0.0.1:" + arg(argc, argv, "--port", "0"));
  auto ka = keepalive(argc, argv);
  if (!split(listen, cfg.host, cfg.port) || !ka)
    return usage();
  auto handler = testbed::make_handler();
  cfg.options.root_handler = handler;
  cfg.options.acceptor = [handler](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, handler, {}};
  };
  cfg.options.keepalive = *ka;
  auto srv = session_server::start(sys, cfg);
  if (!srv) {
    std::fprintf(stderr, "vox-testbed: %s\n", describe(srv.error()).c_str());
    return 1;
  }
  std::printf("LISTEN_ADDR=%s:%u\n", cfg.host.c_str(), (*srv)->port());
  std::fflush(stdout);
  auto set = stop_signals(); // blocked by main() before any thread existed
  int sig = 0;
  sigwait(&set, &sig);
  (*srv)->stop();
  return 0;
}

int run_client(caf::actor_system& sys, int argc, char** argv) {
  std::string host;
  uint16_t port = 0;
  auto name = arg(argc, argv, "--scenario", "");
  auto ka = keepalive(argc, argv);
  if (!split(arg(argc, argv, "--connect", ""), host, port) || name.empty() || !ka)
    return usage();
  std::vector<const testbed::scenario*> chosen;
  for (const auto& s : testbed::scenarios())
    if (name == "all" || s.name == name)
      chosen.push_back(&s);
  if (chosen.empty()) {
    std::fprintf(stderr, "vox-testbed: unknown scenario %s (see `vox-testbed list`)\n", name.c_str());
    return 2;
  }
  auto lnk = tcp_connect(host, port);
  if (!lnk) {
    std::fprintf(stderr, "vox-testbed: %s\n", describe(lnk.error()).c_str());
    return 1;
  }
  session_options opts;
  opts.keepalive = *ka;
  auto session = connect_session(sys, *lnk, opts);
  if (!session) {
    std::fprintf(stderr, "vox-testbed: %s\n", describe(session.error()).c_str());
    return 1;
  }
  bool all_ok = true;
  {
    caf::scoped_actor self{sys};
    vox::client<testbed::service_type> tb{caller{session->root}};
    testbed::scenario_context ctx{sys, self, tb};
    for (const auto* s : chosen) {
      auto failure = s->run(ctx);
      if (failure)
        std::printf("FAIL %s: %s\n", s->name.c_str(), failure->c_str());
      else
        std::printf("OK %s\n", s->name.c_str());
      std::fflush(stdout);
      all_ok = all_ok && !failure;
    }
  }
  caf::anon_send(session->actor, stop_atom::value);
  return all_ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    return usage();
  std::string mode = argv[1];
  if (mode == "list") {
    for (const auto& s : testbed::scenarios())
      std::printf("%s\n", s.name.c_str());
    return 0;
  }
  if (mode != "serve" && mode != "client")
    return usage();
  if (mode == "serve") {
    // Before the actor system starts its threads, so that they all inherit the mask.
    auto set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  return mode == "serve" ? serve(sys, argc, argv) : run_client(sys, argc, argv);
}
