// Caller liveness and session teardown (session-behaviours.md 30, 86–92).
#include <catch2/catch.hpp>

#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

// r[verify rpc.caller.liveness.refcounted]
TEST_CASE("dropping one copy of the root caller keeps the session until the last copy goes", "[actors][liveness]") {
  actor_fixture f;
  auto server_opts = logless();
  server_opts.root_handler = echo_handler();
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server_opts);
  auto root = std::make_unique<caller>(pair.client.root);
  {
    caller copy = *root;
    caller another{pair.client.root}; // made from the handle: the same count
  }
  auto r = f.call(*root, 1, payload{42});
  REQUIRE(r);
  CHECK(r->ret == payload{0, 42});
  root.reset();
  // Behaviours 87, 91: root closed internally with no virtual connection → session ends;
  // the peer sees end of stream and ends too.
  auto reason = f.wait_down(pair.client.actor);
  REQUIRE(reason);
  CHECK_FALSE(*reason);
  CHECK(f.wait_down(pair.server.actor));
}

// r[verify rpc.caller.liveness.last-drop-closes-connection]
TEST_CASE("dropping the last caller of a virtual connection sends ConnectionClose", "[actors][liveness]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  auto [id, conn] = open_accepted(f, peer);
  REQUIRE(conn);
  {
    caller c{*conn};
    caller copy = c;
  }
  auto close = peer.recv_as<connection_close>();
  REQUIRE(close);
  CHECK(close->first == id);
  CHECK(close->second.metadata.empty());
  CHECK(f.wait_down(conn->driver));
  CHECK(f.info(peer.session.actor).active_connections == 1);
}

TEST_CASE("dropping the root caller waits for virtual connections before the session ends", "[actors][liveness]") {
  actor_fixture f;
  auto server_opts = logless();
  server_opts.acceptor = echo_acceptor();
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server_opts);
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  auto vconn = std::make_unique<caller>(*conn);
  { caller root{pair.client.root}; } // root caller gone: root closed internally
  // Behaviour 89: the virtual connection keeps the session alive and working.
  auto r = f.call(*vconn, 1, payload{7});
  REQUIRE(r);
  CHECK(r->ret == payload{0, 7});
  auto info = f.info(pair.client.actor);
  CHECK(info.root_closed);
  CHECK(info.active_connections == 2); // behaviour 92: the root slot stays
  vconn.reset();
  auto reason = f.wait_down(pair.client.actor);
  REQUIRE(reason);
  CHECK_FALSE(*reason);
}

TEST_CASE("a pending outbound open counts as a virtual connection for root teardown", "[actors][liveness]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  auto opened = f.async([&](caf::scoped_actor& a) {
    return actor_fixture::open_with(a, peer.session.actor, {parity::odd, 64});
  });
  auto open = peer.recv_as<connection_open>();
  REQUIRE(open);
  { caller root{peer.session.root}; }
  peer.send(message{0, ping{3}}); // processed after the drop: the session is still there
  REQUIRE(peer.recv_as<pong>());
  CHECK(f.info(peer.session.actor).pending_connections == 1);
  peer.send(message{open->first, connection_reject{}});
  CHECK_FALSE(opened.get());
  CHECK(f.wait_down(peer.session.actor));
}

TEST_CASE("session end closes every connection and every driver exits", "[actors][liveness]") {
  actor_fixture f;
  auto opened = std::make_shared<std::vector<connection_handle>>();
  auto pair = make_echo_pair(f, opened);
  std::vector<connection_handle> conns;
  for (int i = 0; i < 5; ++i) {
    auto c = f.open(pair.client.actor, {parity::odd, 64});
    REQUIRE(c);
    conns.push_back(*c);
  }
  caf::anon_send(pair.client.actor, stop_atom::value);
  CHECK(f.wait_down(pair.client.actor));
  CHECK(f.wait_down(pair.client.root.driver));
  for (auto& c : conns)
    CHECK(f.wait_down(c.driver));
  // The peer saw end of stream: its session and all of its drivers end too.
  CHECK(f.wait_down(pair.server.actor));
  for (auto& c : *opened)
    CHECK(f.wait_down(c.driver));
}

TEST_CASE("calls pending when the session ends fail with session_shutdown", "[actors][liveness]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind));
  caller root{peer.session.root};
  auto answered = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, root, 1, payload{}); });
  REQUIRE(peer.recv_as<request_message>());
  peer.link->close(); // end of stream: the session ends with the call unanswered
  auto r = answered.get();
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::session_shutdown));
}

TEST_CASE("a reply sink dropped without an answer replies Cancelled", "[actors][liveness]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto opts = logless();
  opts.root_handler = [](incoming_call, reply_sink) {}; // drops the sink
  auto peer = make_raw_peer(f, session_role::acceptor, opts, link_pair(kind));
  peer.send(message{0, request_message{1, request_call{5, {}, payload{}, {}}}});
  auto resp = peer.recv_as<request_message>();
  REQUIRE(resp);
  auto* r = std::get_if<request_response>(&resp->second.body);
  REQUIRE(r);
  CHECK(r->ret == payload{0x01, 0x03}); // Err(VoxError::Cancelled)
}

TEST_CASE("a handler may answer later from another thread, exactly once", "[actors][liveness]") {
  actor_fixture f;
  auto opts = logless();
  auto sinks = std::make_shared<std::promise<reply_sink>>();
  opts.root_handler = [sinks](incoming_call, reply_sink sink) { sinks->set_value(sink); };
  auto peer = make_raw_peer(f, session_role::acceptor, opts);
  peer.send(message{0, request_message{1, request_call{5, {}, payload{}, {}}}});
  auto sink = sinks->get_future().get();
  std::thread later{[sink] {
    sink.reply(payload{0x00, 0x01});
    sink.reply(payload{0x00, 0x02}); // ignored
  }};
  later.join();
  auto resp = peer.recv_as<request_message>();
  REQUIRE(resp);
  CHECK(std::get<request_response>(resp->second.body).ret == payload{0x00, 0x01});
  peer.send(message{0, ping{9}});
  auto next = peer.recv();
  REQUIRE(next);
  CHECK(std::holds_alternative<pong>(next->payload)); // no second Response came first
}

