// session_server's limits on sessions, in all and per peer address: a connection beyond
// them is closed before its handshake, and others are served.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "actors/session_server.hpp"
#include "support/session_fixture.hpp"
#include "transport/socket_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// A TCP connection to 127.0.0.1:`port` from the local address `from` (any 127/8 address
/// reaches the loopback interface on Linux).
caf::expected<link_ptr> connect_from(const char* from, uint16_t port) {
  unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0
      || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) < 0)
    return make_system_error(errc::io_error, std::string{"cannot connect from "} + from, errno);
  return make_socket_link(std::move(fd), std::string{"test from "} + from);
}

caf::expected<session_handle> session_from(actor_fixture& f, const char* from, uint16_t port) {
  auto lnk = connect_from(from, port);
  if (!lnk)
    return lnk.error();
  auto s = connect_session(f.sys, *lnk, logless());
  if (s)
    f.track(*s);
  return s;
}

} // namespace

TEST_CASE("a session_server closes connections beyond max_sessions and admits again once a session ends",
          "[session_server][limits]") {
  actor_fixture f;
  accepted_sessions accepted;
  auto cfg = session_server::config{};
  cfg.options = serving(echo_handler());
  cfg.max_sessions = 2;
  auto log = log_recorder::attach(cfg.options);
  accepted.hook(cfg);
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  auto port = (*srv)->port();
  auto a = session_from(f, "127.0.0.1", port);
  auto b = session_from(f, "127.0.0.1", port);
  REQUIRE(a);
  REQUIRE(b);
  auto c = session_from(f, "127.0.0.1", port);
  REQUIRE_FALSE(c); // closed before the prologue was answered
  CHECK((*srv)->connections_refused() == 1);
  CHECK(log->wait_for("(max_sessions)"));
  // The first session ends on the server: a place is free again.
  auto first = accepted.wait_for(1);
  REQUIRE(first);
  caf::anon_send(first, stop_atom::value);
  REQUIRE(f.wait_down(first));
  // The server hears of the end from the actor's cleanup, which may run after our monitor.
  REQUIRE(eventually([&] { return (*srv)->sessions_running() == 1; }));
  auto d = session_from(f, "127.0.0.1", port);
  REQUIRE(d);
  caller d_caller{d->root}; // kept: dropping a root's last caller ends its session
  auto r = f.call(d_caller, 1, payload{9});
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 9});
  CHECK((*srv)->sessions_running() == 2);
}

TEST_CASE("a session_server closes connections beyond max_sessions_per_peer and serves other peers",
          "[session_server][limits]") {
  actor_fixture f;
  auto cfg = session_server::config{};
  cfg.options = serving(echo_handler());
  cfg.max_sessions_per_peer = 1;
  auto log = log_recorder::attach(cfg.options);
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  auto port = (*srv)->port();
  auto a = session_from(f, "127.0.0.1", port);
  REQUIRE(a);
  auto again = session_from(f, "127.0.0.1", port);
  REQUIRE_FALSE(again);
  CHECK(log->wait_for("from 127.0.0.1 (max_sessions_per_peer)"));
  auto other = session_from(f, "127.0.0.2", port); // another address of the loopback interface
  REQUIRE(other);
  auto r = f.call(caller{other->root}, 1, payload{3});
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 3});
  CHECK((*srv)->connections_refused() == 1);
}

TEST_CASE("handshakes in progress count against max_sessions, and a failed one gives its place back",
          "[session_server][limits]") {
  actor_fixture f;
  auto cfg = session_server::config{};
  cfg.options = serving(echo_handler());
  cfg.max_sessions = 1;
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  auto port = (*srv)->port();
  {
    auto silent = connect_from("127.0.0.1", port); // connects, never says a word
    REQUIRE(silent);
    auto refused = session_from(f, "127.0.0.1", port);
    REQUIRE_FALSE(refused);
    CHECK((*srv)->connections_refused() == 1);
    (*silent)->abort(); // its handshake fails: the place is free again
    // The server learns of it from its own input: wait for that, bounded.
    // (Reconnecting until admitted instead floods the listener: under load a blocking
    // connect to a full accept queue then retries its SYN for minutes.)
    REQUIRE(eventually([&] { return (*srv)->handshakes_in_progress() == 0; }));
    auto admitted = session_from(f, "127.0.0.1", port);
    REQUIRE(admitted);
  }
}
