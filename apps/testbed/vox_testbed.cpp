// vox-testbed: the Testbed conformance service (testbed-service.md) over TCP.
//
//   vox-testbed serve --listen HOST:PORT | --port N [--keepalive MS]
//       serves Testbed on the root and on every virtual connection a client opens; prints
//       LISTEN_ADDR=HOST:PORT when ready (port 0 picks a free port); stops on SIGTERM/SIGINT
//   vox-testbed client --connect HOST:PORT --scenario NAME|all [--keepalive MS]
//       runs client scenarios, one "OK name" / "FAIL name: reason" line each; exit 0 only
//       if all pass
//   vox-testbed list
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

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

/// Keepalive: ping well inside the 30 s after which some peers drop a silent session.
std::optional<keepalive_options> keepalive(int argc, char** argv) {
  auto ms = std::stoi(arg(argc, argv, "--keepalive", "10000"));
  if (ms <= 0)
    return std::nullopt;
  return keepalive_options{std::chrono::milliseconds{ms}, std::chrono::milliseconds{3 * ms}};
}

bool split(const std::string& addr, std::string& host, uint16_t& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return false;
  host = addr.substr(0, colon);
  port = static_cast<uint16_t>(std::stoi(addr.substr(colon + 1)));
  return true;
}

volatile std::sig_atomic_t stop_requested = 0;

int serve(caf::actor_system& sys, int argc, char** argv) {
  session_server::config cfg;
  auto listen = arg(argc, argv, "--listen", "127.0.0.1:" + arg(argc, argv, "--port", "0"));
  if (!split(listen, cfg.host, cfg.port))
    return usage();
  auto handler = testbed::make_handler();
  cfg.options.root_handler = handler;
  cfg.options.acceptor = [handler](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, handler, {}};
  };
  cfg.options.keepalive = keepalive(argc, argv);
  auto srv = session_server::start(sys, cfg);
  if (!srv) {
    std::fprintf(stderr, "vox-testbed: %s\n", describe(srv.error()).c_str());
    return 1;
  }
  std::printf("LISTEN_ADDR=%s:%u\n", cfg.host.c_str(), (*srv)->port());
  std::fflush(stdout);
  std::signal(SIGTERM, [](int) { stop_requested = 1; });
  std::signal(SIGINT, [](int) { stop_requested = 1; });
  while (!stop_requested)
    pause(); // woken by the signal
  (*srv)->stop();
  return 0;
}

int run_client(caf::actor_system& sys, int argc, char** argv) {
  std::string host;
  uint16_t port = 0;
  auto name = arg(argc, argv, "--scenario", "");
  if (!split(arg(argc, argv, "--connect", ""), host, port) || name.empty())
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
  opts.keepalive = keepalive(argc, argv);
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
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  return mode == "serve" ? serve(sys, argc, argv) : run_client(sys, argc, argv);
}
