// vox-echo: a small vox server and client over TCP, built on the session actors.
//
//   vox-echo serve [--host H] [--port N] [--keepalive MS]   prints LISTEN_ADDR=H:P when ready
//   vox-echo call --connect H:P [--message TEXT] [--count N]
//   both: [--compress off|prefer|require] [--compress-level N] (zstd link compression)
//         [--tls-cert FILE --tls-key FILE] [--tls-ca FILE] [--auth-token TOKEN] (README
//         "Deployment and security"); serve: [--tls-require-client-cert];
//         call: [--tls] [--tls-server-name NAME] [--tls-insecure-skip-verify]
//
// The service is `Echo.echo(message: String) -> String`; the client calls it on the root
// connection and on a virtual connection it opens and closes, printing every step.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/session_server.hpp"
#include "apps/cli.hpp"
#include "protocol/method_id.hpp"
#include "protocol/result.hpp"

using namespace vox;
using namespace std::chrono_literals;

namespace {

const method_id_t echo_method = method_id("Echo", "echo");

void echo(incoming_call in, reply_sink sink) {
  if (in.method_id != echo_method) {
    sink.reply(unknown_method_response());
    return;
  }
  auto args = decode<std::tuple<std::string>>(in.args);
  if (!args) {
    sink.reply(payload{encode(call_result<std::string>{std::in_place_index<1>,
                                                        invalid_payload{describe(args.error())}})});
    return;
  }
  sink.reply(payload{encode(call_result<std::string>{std::in_place_index<0>, std::get<0>(*args)})});
}

connection_acceptor accept_all() {
  return [](connection_id, const connection_settings& peer, const metadata&)
           -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, echo, {}};
  };
}

const char* const usage_text = "usage: vox-echo serve [--host H] [--port N] [--keepalive MS]\n"
                               "       vox-echo call --connect HOST:PORT [--message TEXT] [--count N]\n"
                               "       both: [--compress off|prefer|require] [--compress-level N]\n"
                               "             [--tls-cert FILE --tls-key FILE] [--tls-ca FILE] [--auth-token TOKEN]\n"
                               "       serve: [--tls-require-client-cert]\n"
                               "       call: [--tls] [--tls-server-name NAME] [--tls-insecure-skip-verify]\n";

struct arguments {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::optional<keepalive_options> keepalive = cli::default_keepalive;
  std::string message = "hello, vox";
  int count = 3;
  compression_options compression;
  cli::security_flags security;
  link_options links; ///< with the TLS context the flags ask for
};

int serve(caf::actor_system& sys, const arguments& a) {
  session_server::config cfg;
  cfg.host = a.host;
  cfg.port = a.port;
  cfg.links = a.links;
  cfg.options.root_handler = echo;
  cfg.options.acceptor = accept_all();
  cfg.options.keepalive = a.keepalive;
  cfg.options.compression = a.compression;
  if (!a.security.auth_token.empty())
    cfg.options.authorize = require_bearer_token(a.security.auth_token);
  cfg.on_session = [](const session_handle&) { std::printf("session established\n"); std::fflush(stdout); };
  auto srv = session_server::start(sys, cfg);
  if (!srv) {
    std::fprintf(stderr, "vox-echo: %s\n", describe(srv.error()).c_str());
    return 1;
  }
  std::printf("LISTEN_ADDR=%s:%u\n", cfg.host.c_str(), (*srv)->port());
  std::fflush(stdout);
  cli::wait_for_stop_signal();
  (*srv)->stop();
  return 0;
}

bool call_echo(caf::scoped_actor& self, const caller& c, const std::string& text, const metadata& md) {
  auto start = std::chrono::steady_clock::now();
  bool ok = false;
  self->request(c.driver(), 5s, call_atom::value, outgoing_call{echo_method, md, payload{encode(std::make_tuple(text))}})
    .receive(
      [&](call_response& r) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
        auto ret = decode<call_result<std::string>>(r.ret);
        if (ret && ret->is_ok()) {
          std::printf("  conn %llu: echo(\"%s\") -> \"%s\" (%lld us)\n", static_cast<unsigned long long>(c.id()),
                      text.c_str(), ret->ok().c_str(), static_cast<long long>(us.count()));
          ok = true;
        } else if (ret && ret->err().index() == 2) {
          std::printf("  conn %llu: echo refused: %s\n", static_cast<unsigned long long>(c.id()),
                      std::get<2>(ret->err()).message.c_str());
        } else {
          std::printf("  conn %llu: echo failed\n", static_cast<unsigned long long>(c.id()));
        }
      },
      [&](caf::error& e) { std::printf("  call failed: %s\n", describe(e).c_str()); });
  return ok;
}

int call(caf::actor_system& sys, const arguments& a) {
  auto addr = a.host + ":" + std::to_string(a.port);
  const auto& text = a.message;
  auto lnk = tcp_connect(a.host, a.port, a.links);
  if (!lnk) {
    std::fprintf(stderr, "vox-echo: %s\n", describe(lnk.error()).c_str());
    return 1;
  }
  session_options opts;
  opts.acceptor = accept_all();
  opts.compression = a.compression;
  auto session = connect_session(sys, *lnk, opts);
  if (!session) {
    std::fprintf(stderr, "vox-echo: %s\n", describe(session.error()).c_str());
    return 1;
  }
  std::printf("connected to %s (we are %s, peer parity %s%s%s)\n", addr.c_str(),
              to_string(session->handshake.our_settings.parity), to_string(session->handshake.peer_settings.parity),
              session->handshake.compression ? ", zstd" : "", a.links.tls ? ", TLS" : "");
  caf::scoped_actor self{sys};
  bool ok = true;
  metadata credentials; // the server checks it on the first root call and on every open
  if (!a.security.auth_token.empty())
    credentials.push_back(bearer_metadata(a.security.auth_token));
  {
    caller root{session->root};
    for (int i = 0; i < a.count; ++i)
      ok = call_echo(self, root, text + " #" + std::to_string(i + 1), credentials) && ok;
    self->request(session->actor, 5s, caf::open_atom::value, open_request{{parity::odd, 64}, credentials, echo})
      .receive(
        [&](connection_handle& h) {
          std::printf("opened virtual connection %llu\n", static_cast<unsigned long long>(h.id));
          caller vc{h};
          ok = call_echo(self, vc, text + " (virtual)", credentials) && ok;
          self->request(session->actor, 5s, caf::close_atom::value, h.id, metadata{})
            .receive([&](caf::ok_atom) { std::printf("closed virtual connection %llu\n", static_cast<unsigned long long>(h.id)); },
                     [&](caf::error& e) { ok = false; std::printf("close failed: %s\n", describe(e).c_str()); });
        },
        [&](caf::error& e) {
          ok = false;
          std::printf("open failed: %s\n", describe(e).c_str());
        });
  }
  // Dropping the root caller ends the session (no virtual connection is left).
  self->monitor(session->actor);
  self->receive([](caf::down_msg&) {}, caf::after(5s) >> [&] { ok = false; });
  std::printf("%s\n", ok ? "done" : "FAILED");
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc >= 2 ? argv[1] : "";
  if (mode == "--help" || mode == "-h")
    return std::fputs(usage_text, stdout), 0;
  arguments args;
  cli::options opts{"vox-echo " + mode, usage_text};
  if (mode == "serve") {
    opts.text("--host", args.host).number<uint16_t>("--port", args.port, 0, 65535).keepalive("--keepalive", args.keepalive);
  } else if (mode == "call") {
    opts.address("--connect", args.host, args.port)
      .required("--connect")
      .text("--message", args.message)
      .number("--count", args.count, 0, 1'000'000);
  }
  if (mode == "serve" || mode == "call") {
    opts.compression(args.compression).security(args.security, mode == "serve");
  } else {
    return cli::options{"vox-echo", usage_text}.error(mode.empty() ? "no mode given" : "unknown mode '" + mode + "'");
  }
  if (auto status = opts.parse(argc, argv, 2))
    return *status;
  bool serving = mode == "serve";
  auto tls = cli::tls_context_of(args.security, serving);
  if (!tls) {
    std::fprintf(stderr, "vox-echo: %s\n", describe(tls.error()).c_str());
    return 1;
  }
  args.links.tls = *tls;
  if (serving)
    cli::block_stop_signals(); // before the actor system's threads exist: they inherit the mask
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  return serving ? serve(sys, args) : call(sys, args);
}
