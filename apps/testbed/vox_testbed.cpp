// vox-testbed: the Testbed conformance service (testbed-service.md) over TCP.
//
//   vox-testbed serve --listen HOST:PORT | --port N [--keepalive MS] [--resume-grace MS]
//                     [--break-after-items N]
//       serves Testbed on the root and on every virtual connection a client opens; prints
//       LISTEN_ADDR=HOST:PORT when ready (port 0 picks a free port); stops on SIGTERM/SIGINT.
//       Sessions are resumable (the reference client requires it) and serve operation ids:
//       a session whose link breaks waits --resume-grace ms (default 30000) for its client
//       to resume it, and a call the client sends again runs once. --break-after-items N
//       cuts the link after the N-th item of the first call of each generate_retry_*
//       method, as the conformance harness's server does (testbed-service.md §4).
//       Clients may ask for either conduit, bare or stable. --stable-ack-after N (serve
//       and client): over the stable conduit, send an ack-only frame after N frames
//       received without a frame of our own (default 64; 1 makes one after every such
//       frame, to check that a peer takes them). --compress off|prefer|require (serve and
//       client; default off) and --compress-level N: zstd link compression, agreed in the
//       handshake with vox-caf peers only (README "Compressed links"); `require` fails a
//       session whose peer does not agree, with an error naming compression
//   vox-testbed client (--connect HOST:PORT | --listen HOST:PORT) --scenario NAME|all|common [--keepalive MS]
//                      [--break-and-resume] [--conduit bare|stable]
//       runs client scenarios as the caller, one "OK name" / "FAIL name: reason" line
//       each; exit 0 only if all pass. "all" includes the two channel_retry_* scenarios,
//       which pass only against a server that cuts the link (--break-after-items);
//       "common" is every other one. --connect sessions are resumable and retry. --connect dials a server; --listen prints
//       LISTEN_ADDR and waits for one peer to dial in (a subject in SUBJECT_MODE=server).
//       --break-and-resume (with --connect): a resumable session; after the scenarios it
//       breaks its own TCP link, prints "RESUMED" once it reconnected and resumed by
//       itself, and runs the scenarios again. --conduit stable (with --connect) asks for the
//       stable conduit, which dials again and replays when its link breaks (the session
//       itself is then not resumable: not supported together yet)
//   vox-testbed list
//   vox-testbed subject        (or no arguments with SUBJECT_MODE set)
//       the conformance harness's subject contract (testbed-service.md §4), from the
//       environment: SUBJECT_MODE=client (dial PEER_ADDR, run CLIENT_SCENARIO),
//       server (dial PEER_ADDR as session initiator and serve Testbed until the session
//       ends) or server-listen (bind 127.0.0.1:LISTEN_PORT, default ephemeral, print
//       LISTEN_ADDR, accept one session and serve it until it ends). SPEC_CONDUIT=stable
//       asks for the stable conduit as initiator (an acceptor takes either).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/session_server.hpp"
#include "apps/cli.hpp"
#include "apps/testbed/testbed_client.hpp"

using namespace vox;

namespace {

const char* const usage_text =
  "usage: vox-testbed serve (--listen HOST:PORT | --port N) [--keepalive MS] [--resume-grace MS]\n"
  "                         [--break-after-items N] [--stable-ack-after N]\n"
  "                         [--compress off|prefer|require] [--compress-level N]\n"
  "                         [--tls-cert FILE --tls-key FILE [--tls-ca FILE [--tls-require-client-cert]]]\n"
  "                         [--auth-token TOKEN]\n"
  "       vox-testbed client (--connect | --listen) HOST:PORT --scenario NAME|all|common [--keepalive MS]\n"
  "                          [--break-and-resume] [--conduit bare|stable] [--stable-ack-after N]\n"
  "                          [--compress off|prefer|require] [--compress-level N]\n"
  "                          [--tls | --tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n"
  "                          [--tls-insecure-skip-verify] [--auth-token TOKEN]\n"
  "       vox-testbed list\n"
  "       vox-testbed subject   (SUBJECT_MODE, PEER_ADDR, CLIENT_SCENARIO, LISTEN_PORT)\n";

/// Every mode's options (each mode takes its own subset).
struct arguments {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::optional<keepalive_options> keepalive = cli::default_keepalive;
  uint32_t resume_grace_ms = 30000;
  uint32_t break_after_items = 0;
  uint32_t stable_ack_after = 64;
  std::string scenario;
  bool listen = false; ///< client: wait for the peer instead of dialling it
  bool break_and_resume = false;
  conduit_mode conduit = conduit_mode::bare;
  compression_options compression;
  cli::security_flags security;
  link_options links; ///< with the TLS context the flags ask for
};

void conduit_option(cli::options& opts, arguments& a) {
  opts.choice("--conduit", {"bare", "stable"},
              [&a](size_t i) { a.conduit = i == 0 ? conduit_mode::bare : conduit_mode::stable; });
}

/// nullopt: run with `a`; otherwise the exit status.
std::optional<int> parse_serve(int argc, char** argv, arguments& a) {
  cli::options opts{"vox-testbed serve", usage_text};
  opts.address("--listen", a.host, a.port)
    .number<uint16_t>("--port", a.port, 0, 65535)
    .keepalive("--keepalive", a.keepalive)
    .number<uint32_t>("--resume-grace", a.resume_grace_ms, 0, 86'400'000)
    .number<uint32_t>("--break-after-items", a.break_after_items, 0, 1u << 30)
    .number<uint32_t>("--stable-ack-after", a.stable_ack_after, 0, 1u << 20)
    .compression(a.compression)
    .security(a.security, true);
  if (auto status = opts.parse(argc, argv, 2))
    return status;
  if (opts.given("--listen") && opts.given("--port"))
    return opts.error("give --listen or --port, not both");
  return std::nullopt;
}

std::optional<int> parse_client(int argc, char** argv, arguments& a) {
  cli::options opts{"vox-testbed client", usage_text};
  opts.address("--connect", a.host, a.port)
    .address("--listen", a.host, a.port)
    .text("--scenario", a.scenario)
    .required("--scenario")
    .keepalive("--keepalive", a.keepalive)
    .flag("--break-and-resume", a.break_and_resume)
    .number<uint32_t>("--stable-ack-after", a.stable_ack_after, 0, 1u << 20)
    .compression(a.compression)
    .security(a.security, false);
  conduit_option(opts, a);
  if (auto status = opts.parse(argc, argv, 2))
    return status;
  if (opts.given("--connect") == opts.given("--listen"))
    return opts.error("give one of --connect and --listen");
  a.listen = opts.given("--listen");
  if (a.break_and_resume && (a.listen || a.conduit != conduit_mode::bare))
    return opts.error("--break-and-resume needs --connect and the bare conduit");
  if (a.listen && a.security.wants_tls())
    return opts.error("TLS needs --connect: a client that listens has no server certificate");
  return std::nullopt;
}

std::optional<conduit_mode> conduit_named(const std::string& name) {
  if (name == "bare")
    return conduit_mode::bare;
  if (name == "stable")
    return conduit_mode::stable;
  return std::nullopt;
}

int fail(const caf::error& e) {
  std::fprintf(stderr, "vox-testbed: %s\n", describe(e).c_str());
  return 1;
}

/// Testbed on the root and on every virtual connection, with keepalive `ka`.
session_options serving_options(std::optional<keepalive_options> ka,
                                std::shared_ptr<testbed::item_breaker> breaker = nullptr) {
  auto opts = testbed::serving_options(std::move(breaker));
  opts.keepalive = ka;
  return opts;
}

int serve(caf::actor_system& sys, const arguments& a) {
  session_server::config cfg;
  cfg.host = a.host;
  cfg.port = a.port;
  cfg.links = a.links;
  std::shared_ptr<testbed::item_breaker> breaker;
  if (a.break_after_items > 0) {
    breaker = std::make_shared<testbed::item_breaker>(a.break_after_items);
    cfg.on_link = [breaker](const link_ptr& lnk) { breaker->accepted(lnk); };
  }
  cfg.options = serving_options(a.keepalive, breaker);
  cfg.options.resumable = true;
  cfg.options.retry = true; // calls the reference client sends again after a resume run once
  cfg.options.resume_timeout = std::chrono::milliseconds{a.resume_grace_ms};
  cfg.options.stable.ack_after_frames = a.stable_ack_after;
  cfg.options.compression = a.compression;
  if (!a.security.auth_token.empty())
    cfg.options.authorize = require_bearer_token(a.security.auth_token);
  auto srv = session_server::start(sys, cfg);
  if (!srv)
    return fail(srv.error());
  std::printf("LISTEN_ADDR=%s:%u\n", cfg.host.c_str(), (*srv)->port());
  std::fflush(stdout);
  cli::wait_for_stop_signal(); // blocked by main() before any thread existed
  (*srv)->stop();
  return 0;
}

/// The scenarios named `name` ("all": every one), or nothing if there is no such scenario.
std::vector<const testbed::scenario*> choose(const std::string& name) {
  std::vector<const testbed::scenario*> chosen;
  for (const auto& s : testbed::scenarios())
    if (name == "all" || s.name == name)
      chosen.push_back(&s);
  if (name == "common")
    for (const auto& s : testbed::scenarios())
      if (!testbed::needs_link_break(s.name))
        chosen.push_back(&s);
  if (chosen.empty())
    std::fprintf(stderr, "vox-testbed: unknown scenario %s (see `vox-testbed list`)\n", name.c_str());
  return chosen;
}

/// Runs `chosen` as the caller on the session's root; prints one line each. True if all pass.
bool run_each(caf::actor_system& sys, const session_handle& session,
              const std::vector<const testbed::scenario*>& chosen, const std::string& auth_token = {}) {
  bool all_ok = true;
  {
    caf::scoped_actor self{sys};
    vox::client<testbed::service_type> tb{caller{session.root}};
    if (!auth_token.empty()) // the server authorizes the session on its first root call
      tb.with_metadata({bearer_metadata(auth_token)});
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
  return all_ok;
}

/// Runs `chosen`, then ends the session.
int run_scenarios(caf::actor_system& sys, const session_handle& session,
                  const std::vector<const testbed::scenario*>& chosen, const std::string& auth_token = {}) {
  bool all_ok = run_each(sys, session, chosen, auth_token);
  caf::anon_send(session.actor, stop_atom::value);
  return all_ok ? 0 : 1;
}

/// --break-and-resume: a resumable session that reconnects by itself; the scenarios run,
/// the link breaks under the session, and once it resumed they run again on it.
int run_across_a_break(caf::actor_system& sys, const arguments& a, session_options opts,
                       const std::vector<const testbed::scenario*>& chosen) {
  std::mutex mtx;
  link_ptr current;
  auto dial_tcp = [&, host = a.host, port = a.port, links = a.links]() -> caf::expected<link_ptr> {
    auto lnk = tcp_connect(host, port, links);
    if (lnk) {
      std::lock_guard<std::mutex> guard{mtx};
      current = *lnk;
    }
    return lnk;
  };
  opts.resumable = true;
  opts.retry = true;
  opts.reconnect = dial_tcp;
  auto first = dial_tcp();
  if (!first)
    return fail(first.error());
  auto session = connect_session(sys, *first, opts);
  if (!session)
    return fail(session.error());
  caller keep{session->root}; // a session whose last root caller is gone ends (behaviour 91)
  bool ok = run_each(sys, *session, chosen, a.security.auth_token);
  {
    std::lock_guard<std::mutex> guard{mtx};
    current->abort();
  }
  caf::scoped_actor self{sys};
  auto deadline = std::chrono::steady_clock::now() + opts.resume_timeout;
  session_info info;
  while (info.resumes == 0 && std::chrono::steady_clock::now() < deadline) {
    caf::error gone;
    self->request(session->actor, std::chrono::seconds{5}, caf::get_atom::value)
      .receive([&](session_info& i) { info = i; }, [&](caf::error& err) { gone = err; });
    if (gone)
      return fail(gone);
    if (info.resumes == 0) // polled: a resume is seconds of backoff at worst, not a hot loop
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  if (info.resumes == 0) {
    std::printf("FAIL resume: the session did not resume within %lld ms\n",
                static_cast<long long>(opts.resume_timeout.count()));
    return 1;
  }
  std::printf("RESUMED\n");
  std::fflush(stdout);
  ok = run_each(sys, *session, chosen, a.security.auth_token) && ok;
  caf::anon_send(session->actor, stop_atom::value);
  return ok ? 0 : 1;
}

/// Dials host:port as session initiator. As a caller it is resumable, with retry, dialling
/// again by itself when the link breaks, as the reference client is (it refuses a server
/// that offers no resumption, and so does this); as a subject server it is not, as the
/// reference subject's is not.
caf::expected<session_handle> dial(caf::actor_system& sys, const std::string& host, uint16_t port,
                                   session_options opts, bool caller = true, link_options links = {}) {
  if (caller) {
    // Bare: a resumable session; stable: the conduit itself reconnects and replays.
    opts.resumable = opts.conduit == conduit_mode::bare;
    opts.retry = opts.resumable;
    opts.reconnect = [host, port, links] { return tcp_connect(host, port, links); };
  }
  auto lnk = tcp_connect(host, port, links);
  if (!lnk)
    return std::move(lnk.error());
  return connect_session(sys, *lnk, std::move(opts));
}

/// Binds host:port, prints LISTEN_ADDR, and accepts one session as acceptor (with a resume
/// key, as resumable initiators require; but with no listener left to take a new link, the
/// session ends as soon as its link breaks).
caf::expected<session_handle> accept_one(caf::actor_system& sys, const std::string& host, uint16_t port,
                                         session_options opts) {
  opts.resumable = true;
  opts.resume_timeout = std::chrono::milliseconds{0};
  auto listener = tcp_listener::bind(host, port);
  if (!listener)
    return std::move(listener.error());
  std::printf("LISTEN_ADDR=%s:%u\n", host.c_str(), (*listener)->port());
  std::fflush(stdout);
  auto lnk = (*listener)->accept();
  if (!lnk)
    return std::move(lnk.error());
  return accept_session(sys, *lnk, std::move(opts));
}

/// `client --connect A` dials A; `client --listen A` waits for a subject to dial in (the
/// harness side of SUBJECT_MODE=server). Either way we are the caller.
int run_client(caf::actor_system& sys, const arguments& a, const std::vector<const testbed::scenario*>& chosen) {
  session_options opts;
  opts.keepalive = a.keepalive;
  opts.conduit = a.conduit;
  opts.stable.ack_after_frames = a.stable_ack_after;
  opts.compression = a.compression;
  if (a.break_and_resume)
    return run_across_a_break(sys, a, opts, chosen);
  auto session = a.listen ? accept_one(sys, a.host, a.port, opts) : dial(sys, a.host, a.port, opts, true, a.links);
  if (!session)
    return fail(session.error());
  return run_scenarios(sys, *session, chosen, a.security.auth_token);
}

/// Blocks until the session actor is gone (the peer closed, or the link broke).
void wait_for_end(caf::actor_system& sys, const session_handle& session) {
  caf::scoped_actor self{sys};
  self->monitor(session.actor);
  self->receive([](caf::down_msg&) {});
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

int subject(caf::actor_system& sys) {
  auto mode = env("SUBJECT_MODE");
  auto conduit = conduit_named(env("SPEC_CONDUIT").empty() ? "bare" : env("SPEC_CONDUIT"));
  if (!conduit) {
    std::fprintf(stderr, "vox-testbed: SPEC_CONDUIT must be bare or stable\n");
    return 2;
  }
  std::optional<keepalive_options> ka = cli::default_keepalive;
  std::string host;
  uint16_t port = 0;
  caf::expected<session_handle> session = caf::error{};
  if (mode == "client" || mode == "server") {
    if (!cli::split_address(env("PEER_ADDR"), host, port)) {
      std::fprintf(stderr, "vox-testbed: PEER_ADDR must be HOST:PORT\n");
      return 2;
    }
    if (mode == "client") {
      auto chosen = choose(env("CLIENT_SCENARIO"));
      if (chosen.empty())
        return 2;
      session_options opts;
      opts.keepalive = ka;
      opts.conduit = *conduit;
      session = dial(sys, host, port, opts);
      return session ? run_scenarios(sys, *session, chosen) : fail(session.error());
    }
    auto opts = serving_options(ka);
    opts.conduit = *conduit;
    session = dial(sys, host, port, opts, false);
  } else if (mode == "server-listen") {
    auto p = cli::number<uint16_t>(env("LISTEN_PORT").empty() ? "0" : env("LISTEN_PORT"), 0, 65535);
    if (!p) {
      std::fprintf(stderr, "vox-testbed: LISTEN_PORT must be a port number\n");
      return 2;
    }
    session = accept_one(sys, "127.0.0.1", *p, serving_options(ka));
  } else {
    std::fprintf(stderr, "vox-testbed: SUBJECT_MODE must be client, server or server-listen\n");
    return 2;
  }
  if (!session)
    return fail(session.error());
  wait_for_end(sys, *session);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc >= 2 ? argv[1] : (std::getenv("SUBJECT_MODE") != nullptr ? "subject" : "");
  if (mode == "--help" || mode == "-h")
    return std::fputs(usage_text, stdout), 0;
  if (mode == "list" || mode == "subject") {
    if (argc > 2)
      return cli::options{"vox-testbed " + mode, usage_text}.error(std::string{"unexpected argument '"} + argv[2] + "'");
    if (mode == "list") {
      for (const auto& s : testbed::scenarios())
        std::printf("%s\n", s.name.c_str());
      return 0;
    }
  } else if (mode != "serve" && mode != "client") {
    return cli::options{"vox-testbed", usage_text}.error(mode.empty() ? "no mode given" : "unknown mode '" + mode + "'");
  }
  arguments args;
  std::vector<const testbed::scenario*> chosen;
  if (mode == "serve") {
    if (auto status = parse_serve(argc, argv, args))
      return *status;
    cli::block_stop_signals(); // before the actor system's threads exist: they inherit the mask
  } else if (mode == "client") {
    if (auto status = parse_client(argc, argv, args))
      return *status;
    chosen = choose(args.scenario);
    if (chosen.empty())
      return 2;
  }
  if (mode == "serve" || mode == "client") {
    auto tls = cli::tls_context_of(args.security, mode == "serve");
    if (!tls)
      return fail(tls.error());
    args.links.tls = *tls;
  }
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  // Idle workers sleep on their condition variable at once instead of polling with 50 us
  // sleeps (README: Threads and shared state).
  cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  caf::actor_system sys{cfg};
  if (mode == "serve")
    return serve(sys, args);
  return mode == "client" ? run_client(sys, args, chosen) : subject(sys);
}
