// Session establishment, id allocation and routing (session-behaviours.md 19–22, 50, 57).
#include <catch2/catch.hpp>

#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

// r[verify session.handshake]
// r[verify session.parity]
TEST_CASE("establishment sets role and parity from the handshake", "[actors][session]") {
  actor_fixture f;
  auto server_opts = logless();
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server_opts);
  auto ci = f.info(pair.client.actor);
  auto si = f.info(pair.server.actor);
  CHECK(ci.initiator);
  CHECK(ci.parity == parity::odd);
  CHECK_FALSE(si.initiator);
  CHECK(si.parity == parity::even);
  CHECK(ci.active_connections == 1); // the root exists implicitly
  CHECK(si.active_connections == 1);
  CHECK(pair.client.root.local_settings == connection_settings{parity::odd, 64});
  CHECK(pair.client.root.peer_settings == connection_settings{parity::even, 64});
  // Not resumable unless asked for (session_options::resumable): no key.
  CHECK_FALSE(pair.server.handshake.session_resume_key);
  CHECK_FALSE(ci.resume_key);
}

TEST_CASE("a call on the root connection reaches the peer's handler and returns its answer", "[actors][session]") {
  actor_fixture f;
  auto server_opts = logless();
  server_opts.root_handler = echo_handler();
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server_opts);
  caller root{pair.client.root};
  auto r = f.call(root, 42, payload{0x2a});
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 0x2a});
}

TEST_CASE("a call to a connection without a handler gets UnknownMethod", "[actors][session]") {
  actor_fixture f;
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), logless());
  caller root{pair.client.root};
  auto r = f.call(root, 7, payload{});
  REQUIRE(r);
  CHECK(r->ret == payload{0x01, 0x01});
}

// r[verify rpc.request.id-allocation]
TEST_CASE("request ids follow the connection's parity", "[actors][session]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  caller root{peer.session.root};
  std::vector<request_id> seen;
  for (int i = 0; i < 3; ++i) {
    caf::anon_send(root.driver(), call_atom::value, outgoing_call{1, {}, {}});
    auto call = peer.recv_as<request_message>();
    REQUIRE(call);
    seen.push_back(call->second.id);
    peer.send(message{0, request_message{call->second.id, request_response{{}, payload{0x00}, {}}}});
  }
  CHECK(seen == std::vector<request_id>{1, 3, 5});
}

// r[verify session.message.connection-id]
TEST_CASE("a Ping on any connection id is answered with a Pong on that id with the same nonce", "[actors][session]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  for (connection_id id : {connection_id{0}, connection_id{7}, connection_id{1234}}) {
    peer.send(message{id, ping{id + 99}});
    auto m = peer.recv();
    REQUIRE(m);
    CHECK(m->connection_id == id);
    REQUIRE(std::holds_alternative<pong>(m->payload));
    CHECK(std::get<pong>(m->payload).nonce == id + 99);
  }
}

TEST_CASE("messages for unknown or pending connections are dropped without a reply", "[actors][session]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  // Pending: we opened 1 and the peer has not answered yet.
  caf::anon_send(peer.session.actor, caf::open_atom::value,
                 open_request{{parity::odd, 64}, {}, echo_handler()});
  auto open = peer.recv_as<connection_open>();
  REQUIRE(open);
  peer.send(message{99, request_message{1, request_call{5, {}, payload{}, {}}}});
  peer.send(message{open->first, request_message{1, request_call{5, {}, payload{}, {}}}});
  peer.send(message{99, channel_message{2, channel_item{payload{0x01}}}});
  // Still alive, and nothing was answered before the Pong.
  peer.send(message{0, ping{5}});
  auto m = peer.recv();
  REQUIRE(m);
  CHECK(std::holds_alternative<pong>(m->payload));
  CHECK(f.info(peer.session.actor).pending_connections == 1);
}

// r[verify session.protocol-error]
TEST_CASE("an undecodable frame gets a ProtocolError on connection 0 and ends the session", "[actors][session]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  caller root{peer.session.root};
  peer.send_bytes(byte_buffer{0x00, 0x09}); // variant 9 does not exist
  auto m = peer.recv();
  REQUIRE(m);
  CHECK(m->connection_id == 0);
  REQUIRE(std::holds_alternative<protocol_error>(m->payload));
  CHECK(std::get<protocol_error>(m->payload).description.find("invalid_tag") != std::string::npos);
  CHECK(peer.sees_eof());
  auto reason = f.wait_down(peer.session.actor);
  REQUIRE(reason);
  CHECK(is(*reason, errc::protocol_violation));
}

TEST_CASE("a received ProtocolError is logged and does not end the session", "[actors][session]") {
  actor_fixture f;
  std::vector<std::string> lines;
  auto opts = logless();
  auto log = std::make_shared<std::promise<std::string>>();
  opts.log = [log](const std::string& line) { log->set_value(line); };
  auto peer = make_raw_peer(f, session_role::acceptor, opts);
  peer.send(message{0, protocol_error{"you did something"}});
  auto fut = log->get_future();
  REQUIRE(fut.wait_for(wait_bound) == std::future_status::ready);
  CHECK(fut.get().find("you did something") != std::string::npos);
  peer.send(message{0, ping{1}});
  auto m = peer.recv_as<pong>();
  REQUIRE(m);
}

TEST_CASE("a session ends when its link reaches end of stream", "[actors][session]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  peer.link->close();
  auto reason = f.wait_down(peer.session.actor);
  REQUIRE(reason);
  CHECK_FALSE(*reason);
}

// r[verify session.initiator]
// r[verify session.acceptor]
TEST_CASE("sessions establish and call over TCP on 127.0.0.1", "[actors][session][tcp]") {
  actor_fixture f;
  auto listener = tcp_listener::bind("127.0.0.1", 0);
  REQUIRE(listener);
  std::promise<caf::expected<session_handle>> server_result;
  std::thread acceptor{[&] {
    auto lnk = (*listener)->accept();
    if (!lnk) {
      server_result.set_value(lnk.error());
      return;
    }
    auto opts = logless();
    opts.root_handler = echo_handler();
    server_result.set_value(accept_session(f.sys, *lnk, opts));
  }};
  auto lnk = tcp_connect("127.0.0.1", (*listener)->port());
  REQUIRE(lnk);
  auto client = connect_session(f.sys, *lnk, logless());
  acceptor.join();
  auto server = server_result.get_future().get();
  REQUIRE(client);
  REQUIRE(server);
  f.track(*client);
  f.track(*server);
  CHECK(f.info(client->actor).parity == parity::odd);
  CHECK(f.info(server->actor).parity == parity::even);
  caller root{client->root};
  auto r = f.call(root, 1, payload{0x05});
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 0x05});
  caf::anon_send(client->actor, stop_atom::value);
  CHECK(f.wait_down(server->actor));
}

TEST_CASE("a peer that stalls in the handshake is cut off after the handshake timeout", "[actors][session]") {
  actor_fixture f;
  auto [ours, theirs] = make_memory_link_pair();
  auto opts = logless();
  opts.handshake_timeout = 100ms;
  auto r = accept_session(f.sys, ours, opts); // the peer never sends its hello
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::timeout));
}
