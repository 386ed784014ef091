// Virtual connections: open, accept, reject, close (session-behaviours.md 47–50, 67–85).
#include <catch2/catch.hpp>

#include "actors/driver_actor.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// Opens a connection from `peer.session` without waiting; the raw side sees the open.
void open_async(raw_peer& peer, metadata md = {}) {
  caf::anon_send(peer.session.actor, caf::open_atom::value, open_request{{parity::odd, 64}, std::move(md), {}});
}

metadata tag(std::string v) { return {{"why", std::move(v), 0}}; }

} // namespace

// r[verify rpc.virtual-connection.open]
// r[verify rpc.virtual-connection.accept]
TEST_CASE("a virtual connection opens, carries calls and has its own handler", "[actors][connections]") {
  actor_fixture f;
  auto server_opts = logless();
  server_opts.acceptor = echo_acceptor();
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server_opts);
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  CHECK(conn->id == 1);
  CHECK(conn->peer_settings == connection_settings{parity::even, 64});
  caller c{*conn};
  auto r = f.call(c, 9, payload{0x7b});
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 0x7b});
  auto info = f.info(pair.server.actor);
  CHECK(info.active_connections == 2);
}

// r[verify connection.open]
// r[verify session.parity]
TEST_CASE("outbound opens allocate connection ids by the session's parity and never reuse them", "[actors][connections]") {
  actor_fixture f;
  auto odd = make_raw_peer(f, session_role::initiator, logless());
  auto even = make_raw_peer(f, session_role::acceptor, logless());
  std::vector<connection_id> odd_ids, even_ids;
  for (int i = 0; i < 3; ++i) {
    open_async(odd);
    open_async(even);
    auto a = odd.recv_as<connection_open>();
    auto b = even.recv_as<connection_open>();
    REQUIRE(a);
    REQUIRE(b);
    odd_ids.push_back(a->first);
    even_ids.push_back(b->first);
    odd.send(message{a->first, connection_reject{}}); // a rejected id is not handed out again
  }
  CHECK(odd_ids == std::vector<connection_id>{1, 3, 5});
  CHECK(even_ids == std::vector<connection_id>{2, 4, 6});
}

// r[verify connection.open.rejection]
TEST_CASE("an open rejected by the peer fails with the peer's metadata", "[actors][connections]") {
  actor_fixture f;
  auto server_opts = logless();
  server_opts.acceptor = [](connection_id, const connection_settings&, const metadata& md)
    -> std::variant<accept_connection, reject_connection> {
    CHECK(md == tag("please"));
    return reject_connection{tag("no")};
  };
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server_opts);
  auto conn = f.open(pair.client.actor, {parity::odd, 64}, tag("please"));
  REQUIRE_FALSE(conn);
  CHECK(is(conn.error(), errc::rejected));
  CHECK(describe(conn.error()).find("\"why\"=\"no\"") != std::string::npos);
  CHECK(f.info(pair.client.actor).pending_connections == 0);
}

TEST_CASE("an open without an acceptor on the peer is rejected", "[actors][connections]") {
  actor_fixture f;
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), logless());
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE_FALSE(conn);
  CHECK(is(conn.error(), errc::rejected));
}

TEST_CASE("inbound opens with the wrong parity, a used id or id 0 are rejected without teardown", "[actors][connections]") {
  actor_fixture f;
  auto opts = logless();
  opts.acceptor = echo_acceptor();
  auto peer = make_raw_peer(f, session_role::initiator, opts); // we are Odd: peer ids are even
  for (connection_id bad : {connection_id{3}, connection_id{0}}) {
    peer.send(message{bad, connection_open{{parity::even, 64}, {}}});
    auto r = peer.recv_as<connection_reject>();
    REQUIRE(r);
    CHECK(r->first == bad);
    CHECK(r->second.metadata.empty());
  }
  peer.send(message{2, connection_open{{parity::even, 64}, {}}});
  auto ok = peer.recv_as<connection_accept>();
  REQUIRE(ok);
  CHECK(ok->first == 2);
  CHECK(ok->second.connection_settings == connection_settings{parity::odd, 64});
  peer.send(message{2, connection_open{{parity::even, 64}, {}}}); // duplicate id
  auto dup = peer.recv_as<connection_reject>();
  REQUIRE(dup);
  CHECK(dup->first == 2);
  CHECK(f.info(peer.session.actor).active_connections == 2);
}

TEST_CASE("inbound opens beyond max_virtual_connections are rejected and the rest keep working", "[actors][connections]") {
  actor_fixture f;
  auto opts = logless();
  opts.acceptor = echo_acceptor();
  opts.max_virtual_connections = 3;
  auto peer = make_raw_peer(f, session_role::initiator, opts);
  for (connection_id id : {2u, 4u, 6u}) {
    peer.send(message{id, connection_open{{parity::even, 64}, {}}});
    REQUIRE(peer.recv_as<connection_accept>());
  }
  peer.send(message{8, connection_open{{parity::even, 64}, {}}});
  auto r = peer.recv_as<connection_reject>();
  REQUIRE(r);
  CHECK(r->first == 8);
  // Closing one makes room again.
  peer.send(message{2, connection_close{}});
  peer.send(message{10, connection_open{{parity::even, 64}, {}}});
  auto ok = peer.recv_as<connection_accept>();
  REQUIRE(ok);
  CHECK(ok->first == 10);
}

TEST_CASE("an acceptor's rejection carries its metadata to the peer", "[actors][connections]") {
  actor_fixture f;
  auto opts = logless();
  opts.acceptor = [](connection_id, const connection_settings&, const metadata&)
    -> std::variant<accept_connection, reject_connection> { return reject_connection{tag("busy")}; };
  auto peer = make_raw_peer(f, session_role::initiator, opts);
  peer.send(message{2, connection_open{{parity::even, 64}, {}}});
  auto r = peer.recv_as<connection_reject>();
  REQUIRE(r);
  CHECK(r->second.metadata == tag("busy"));
}

TEST_CASE("duplicate accept is ignored after the first and the connection stays open", "[actors][connections]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  auto opened = f.async([&](caf::scoped_actor& a) {
    return actor_fixture::open_with(a, peer.session.actor, {parity::odd, 64});
  });
  auto open = peer.recv_as<connection_open>();
  REQUIRE(open);
  peer.send(message{open->first, connection_accept{{parity::even, 64}, {}}});
  auto conn = opened.get();
  REQUIRE(conn);
  peer.send(message{open->first, connection_accept{{parity::even, 32}, {}}});
  peer.send(message{open->first, connection_reject{}});
  // The connection still works: a call on it reaches the peer and its answer comes back.
  caller c{*conn};
  auto answered = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, c, 3, payload{}); });
  auto req = peer.recv_as<request_message>();
  REQUIRE(req);
  CHECK(req->first == open->first);
  peer.send(message{open->first, request_message{req->second.id, request_response{{}, payload{0x00}, {}}}});
  auto r = answered.get();
  REQUIRE(r);
  CHECK(f.info(peer.session.actor).active_connections == 2);
}

TEST_CASE("duplicate reject is ignored after the first", "[actors][connections]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  auto opened = f.async([&](caf::scoped_actor& a) {
    return actor_fixture::open_with(a, peer.session.actor, {parity::odd, 64});
  });
  auto open = peer.recv_as<connection_open>();
  REQUIRE(open);
  peer.send(message{open->first, connection_reject{tag("first")}});
  auto conn = opened.get();
  REQUIRE_FALSE(conn);
  peer.send(message{open->first, connection_reject{tag("second")}});
  peer.send(message{open->first, connection_accept{{parity::even, 64}, {}}});
  peer.send(message{0, ping{1}});
  REQUIRE(peer.recv_as<pong>());
  auto info = f.info(peer.session.actor);
  CHECK(info.active_connections == 1);
  CHECK(info.pending_connections == 0);
}

TEST_CASE("accept or reject for a connection never opened is ignored", "[actors][connections]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  peer.send(message{99, connection_accept{{parity::even, 64}, {}}});
  peer.send(message{99, connection_reject{}});
  peer.send(message{0, ping{1}});
  REQUIRE(peer.recv_as<pong>());
  auto info = f.info(peer.session.actor);
  CHECK(info.active_connections == 1);
  CHECK(info.pending_connections == 0);
}

// r[verify connection.close]
TEST_CASE("closing the root connection is refused and closing an unknown id errors", "[actors][connections]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  auto root = f.close(peer.session.actor, 0);
  CHECK(is(root, errc::invalid_request));
  CHECK(describe(root) == "invalid_request: cannot close root connection");
  auto unknown = f.close(peer.session.actor, 5);
  CHECK(describe(unknown) == "invalid_request: connection not found");
}

// r[verify connection.close.semantics]
TEST_CASE("a local close sends ConnectionClose and ends the connection's driver", "[actors][connections]") {
  actor_fixture f;
  auto opened = std::make_shared<std::vector<connection_handle>>();
  auto pair = make_echo_pair(f, opened);
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  REQUIRE(opened->size() == 1);
  auto server_driver = opened->front().driver;
  auto client_driver = conn->driver;
  CHECK_FALSE(f.close(pair.client.actor, conn->id, tag("bye")));
  CHECK(f.wait_down(client_driver));
  CHECK(f.wait_down(server_driver)); // the peer got ConnectionClose
  caller c{*conn};
  auto r = f.call(c, 1, payload{});
  CHECK_FALSE(r);
}

// A dead driver used to stay in its session as the session's monitor entry: a weak
// reference that keeps the driver's whole allocation for as long as the session lives.
TEST_CASE("a closed connection's drivers are freed while their sessions go on", "[actors][connections]") {
  actor_fixture f;
  auto opened = std::make_shared<std::vector<connection_handle>>();
  auto pair = make_echo_pair(f, opened);
  std::vector<caf::actor_addr> drivers;
  {
    auto conn = f.open(pair.client.actor, {parity::odd, 64});
    REQUIRE(conn);
    REQUIRE(opened->size() == 1);
    std::vector<driver_actor> strong{conn->driver, opened->front().driver};
    opened->clear();
    CHECK_FALSE(f.close(pair.client.actor, conn->id));
    for (auto& d : strong) {
      CHECK(f.wait_down(d));
      drivers.push_back(d.address());
    }
  } // the test's strong references go here
  for (auto& d : drivers) // the allocation goes once no weak reference but ours is left
    CHECK(eventually([&] { return only_this_reference_left(d); }));
  CHECK(f.info(pair.client.actor).active_connections == 1); // both sessions are still up
  CHECK(f.info(pair.server.actor).active_connections == 1);
}

TEST_CASE("a close request clears a pending outbound open", "[actors][connections]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  auto opened = f.async([&](caf::scoped_actor& a) {
    return actor_fixture::open_with(a, peer.session.actor, {parity::odd, 64});
  });
  auto open = peer.recv_as<connection_open>();
  REQUIRE(open);
  CHECK_FALSE(f.close(peer.session.actor, open->first));
  auto conn = opened.get();
  REQUIRE_FALSE(conn);
  CHECK(is(conn.error(), errc::connection_closed));
  auto close = peer.recv_as<connection_close>();
  REQUIRE(close);
  CHECK(close->first == open->first);
}

TEST_CASE("pending calls of a virtual connection fail with ConnectionClosed when it closes", "[actors][connections]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind));
  auto [id, conn] = open_accepted(f, peer);
  REQUIRE(conn);
  caller c{*conn};
  auto answered = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, c, 3, payload{}); });
  REQUIRE(peer.recv_as<request_message>()); // the call is out and never answered
  auto fails_closed = [&] {
    auto r = answered.get();
    REQUIRE_FALSE(r);
    CHECK(is(r.error(), errc::connection_closed));
  };
  SECTION("an inbound ConnectionClose also ends the connection's driver") {
    peer.send(message{id, connection_close{}});
    fails_closed();
    CHECK(f.wait_down(conn->driver));
  }
  SECTION("a local close also sends ConnectionClose") {
    CHECK_FALSE(f.close(peer.session.actor, id));
    fails_closed();
    auto close = peer.recv_as<connection_close>();
    REQUIRE(close);
    CHECK(close->first == id);
  }
}

TEST_CASE("a virtual connection whose driver dies is closed toward the peer", "[actors][connections]") {
  actor_fixture f;
  auto opts = logless();
  auto opened = std::make_shared<std::vector<connection_handle>>();
  opts.acceptor = echo_acceptor(opened);
  auto peer = make_raw_peer(f, session_role::initiator, opts);
  peer.send(message{2, connection_open{{parity::even, 64}, {}}});
  REQUIRE(peer.recv_as<connection_accept>());
  REQUIRE(opened->size() == 1);
  caf::anon_send_exit(opened->front().driver, caf::exit_reason::kill);
  auto close = peer.recv_as<connection_close>();
  REQUIRE(close);
  CHECK(close->first == 2);
}

// r[verify connection.open]
TEST_CASE("virtual connections open, call and close over TCP", "[actors][connections][tcp]") {
  actor_fixture f;
  auto server_opts = logless();
  server_opts.acceptor = echo_acceptor();
  auto pair = make_session_pair(f, tcp_link_pair(), logless(), server_opts);
  for (int i = 0; i < 3; ++i) {
    auto conn = f.open(pair.client.actor, {parity::odd, 64});
    REQUIRE(conn);
    CHECK(conn->id == static_cast<connection_id>(2 * i + 1));
    caller c{*conn};
    auto r = f.call(c, 1, payload{static_cast<uint8_t>(i)});
    REQUIRE(r);
    CHECK(r->ret == payload{0x00, static_cast<uint8_t>(i)});
    CHECK_FALSE(f.close(pair.client.actor, conn->id));
  }
  // A root round trip orders us after the peer's handling of the last ConnectionClose.
  caller root{pair.client.root};
  REQUIRE(f.call(root, 1, payload{}));
  CHECK(f.info(pair.server.actor).active_connections == 1);
}
