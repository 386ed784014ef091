// The TCP session server: one acceptor session per socket, stalled handshakes cut off.
#include <catch2/catch.hpp>

#include "actors/session_server.hpp"
#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"

using namespace vox;
using namespace vox::test;

namespace {

session_server::config echo_server_config() {
  session_server::config cfg;
  cfg.options.log = [](const std::string&) {};
  cfg.options.root_handler = echo_handler();
  cfg.options.acceptor = echo_acceptor();
  // Long enough for a well-behaved client on a loaded machine (sanitizers, 2 cores).
  cfg.options.handshake_timeout = 2s;
  return cfg;
}

session_options client_options() {
  session_options o;
  o.log = [](const std::string&) {};
  return o;
}

} // namespace

TEST_CASE("the session server serves many clients, each with its own session", "[actors][server][tcp]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, echo_server_config());
  REQUIRE(srv);
  std::vector<session_handle> clients;
  for (int i = 0; i < 5; ++i) {
    auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
    REQUIRE(lnk);
    auto s = connect_session(f.sys, *lnk, client_options());
    REQUIRE(s);
    clients.push_back(f.track(*s));
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    caller root{clients[i].root};
    auto r = f.call(root, 1, payload{static_cast<uint8_t>(i)});
    REQUIRE(r);
    CHECK(r->ret == payload{0, static_cast<uint8_t>(i)});
  }
  CHECK((*srv)->sessions_started() == 5);
  (*srv)->stop();
  for (auto& c : clients)
    CHECK(f.wait_down(c.actor)); // the server's sessions ended, so the clients saw EOF
}

TEST_CASE("a session server lets go of every session that ended, so their memory is freed",
          "[actors][server][tcp]") {
  // A CAF actor's storage lives until its last weak reference goes: a server that kept
  // even weak handles of ended sessions grew with every burst of clients (#13's soak).
  actor_fixture f;
  auto srv = session_server::start(f.sys, echo_server_config());
  REQUIRE(srv);
  for (int round = 0; round < 3; ++round) {
    std::vector<session_handle> clients;
    std::vector<caller> roots; // a session whose last root caller is gone ends (behaviour 91)
    for (int i = 0; i < 40; ++i) {
      auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
      REQUIRE(lnk);
      auto s = connect_session(f.sys, *lnk, client_options());
      REQUIRE(s);
      clients.push_back(*s);
      roots.emplace_back(s->root);
    }
    for (auto& r : roots)
      REQUIRE(f.call(r, 1, payload{1}));
    CHECK((*srv)->sessions_running() == 40);
    for (auto& c : clients) {
      caf::anon_send(c.actor, stop_atom::value);
      CHECK(f.wait_down(c.actor));
    }
    // The server's sessions end once they read the clients' EOF.
    CHECK(eventually([&] { return (*srv)->sessions_running() == 0; }));
  }
  CHECK((*srv)->sessions_started() == 120);
}

TEST_CASE("a client that stalls in the prologue does not delay others and is cut off", "[actors][server][tcp]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, echo_server_config());
  REQUIRE(srv);
  auto stalled = tcp_connect("127.0.0.1", (*srv)->port()); // never sends its hello
  REQUIRE(stalled);
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto s = connect_session(f.sys, *lnk, client_options());
  REQUIRE(s);
  f.track(*s);
  caller root{s->root};
  REQUIRE(f.call(root, 1, payload{}));
  // After the handshake timeout the server closes the stalled socket: we read EOF.
  auto r = (*stalled)->recv();
  REQUIRE(r);
  CHECK_FALSE(r->has_value());
}

TEST_CASE("a session server holds many sessions and handshakes without a thread for any of them",
          "[actors][server][tcp][io]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, echo_server_config());
  REQUIRE(srv);
  auto port = (*srv)->port();
  std::vector<caller> callers;
  auto connect_one = [&] {
    auto lnk = tcp_connect("127.0.0.1", port);
    REQUIRE(lnk);
    auto s = connect_session(f.sys, *lnk, client_options());
    REQUIRE(s);
    f.track(*s);
    callers.emplace_back(s->root);
    REQUIRE(f.call(callers.back(), 1, payload{7}));
  };
  connect_one();
  auto baseline = test::thread_count();
  // Handshakes in progress: raw sockets that connect and say nothing.
  std::vector<unique_fd> silent;
  for (int i = 0; i < 50; ++i)
    silent.push_back(raw_connect(port));
  for (int i = 0; i < 100; ++i)
    connect_one();
  CHECK(test::thread_count() == baseline);
  CHECK((*srv)->sessions_started() == 101);
}
