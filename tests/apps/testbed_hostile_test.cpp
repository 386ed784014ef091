// vox-testbed's server under hostile traffic: every bad peer is cut off, everyone else is
// served. TCP on 127.0.0.1 against the same session_server the app runs.
#include <catch2/catch.hpp>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"
#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"
#include "transport/prologue.hpp"
#include "transport/socket_link.hpp"

using namespace vox;
using namespace vox::test;
using namespace vox::testbed;

namespace {

std::unique_ptr<session_server> start_testbed(actor_fixture& f) {
  session_server::config cfg;
  cfg.options = serving_options();
  cfg.options.log = logless().log;
  auto srv = session_server::start(f.sys, cfg);
  if (!srv)
    throw std::runtime_error(describe(srv.error()));
  return std::move(*srv);
}

/// A link past the prologue and handshake, where the test speaks raw bytes.
link_ptr handshaken(uint16_t port) {
  auto lnk = tcp_connect("127.0.0.1", port);
  if (!lnk || !initiate_transport(**lnk, conduit_mode::bare) || !handshake_as_initiator(**lnk, handshake_options{}))
    throw std::runtime_error("raw handshake failed");
  return *lnk;
}

/// Skips Pings; the next Message, or nullopt at end of stream.
std::optional<message> next_message(vox::link& lnk) {
  for (;;) {
    auto f = lnk.recv();
    if (!f || !*f)
      return std::nullopt;
    auto m = decode_message(**f);
    if (m && !std::holds_alternative<ping>(m->payload))
      return *m;
  }
}

/// A well-behaved client still gets answers.
void still_serves(actor_fixture& f, uint16_t port) {
  auto lnk = tcp_connect("127.0.0.1", port);
  REQUIRE(lnk);
  auto s = connect_session(f.sys, *lnk, logless());
  REQUIRE(s);
  f.track(*s);
  vox::client<service_type> tb{caller{s->root}};
  auto r = tb.call<m::echo>(f.self, {"still here"}, wait_bound);
  REQUIRE(r);
  CHECK(r->ok() == "still here");
}

} // namespace

TEST_CASE("garbage frames get a ProtocolError on connection 0 and the socket closes", "[testbed][hostile][tcp]") {
  actor_fixture f;
  auto srv = start_testbed(f);
  for (auto garbage : {byte_buffer{0xff, 0xff}, byte_buffer{0x00, 0x05, 0x01, 0x00}, byte_buffer{0x00, 0x63}}) {
    auto lnk = handshaken(srv->port());
    REQUIRE(lnk->send(garbage));
    auto m = next_message(*lnk);
    REQUIRE(m);
    CHECK(m->connection_id == 0);
    CHECK(std::holds_alternative<protocol_error>(m->payload));
    CHECK_FALSE(next_message(*lnk)); // then end of stream
  }
  still_serves(f, srv->port());
}

TEST_CASE("a length prefix near 4 GiB closes that socket at once without allocating", "[testbed][hostile][tcp]") {
  actor_fixture f;
  auto srv = start_testbed(f);
  for (bool after_handshake : {false, true}) {
    auto raw = raw_connect(srv->port());
    REQUIRE(raw);
    // A second descriptor of the same socket carries the link for the handshake.
    auto lnk = make_socket_link(unique_fd{::dup(raw.get())}, "test");
    if (after_handshake) {
      REQUIRE(initiate_transport(*lnk, conduit_mode::bare));
      REQUIRE(handshake_as_initiator(*lnk, handshake_options{}));
    }
    uint8_t header[4] = {0xfe, 0xff, 0xff, 0xff}; // a bare header, no body
    REQUIRE(write_all(raw.get(), byte_span{header, 4}));
    // The server closes at once: end of stream (or a reset), and no 4 GiB allocation
    // happened (ASan would abort on one).
    auto r = lnk->recv();
    CHECK((!r || !r->has_value()));
  }
  still_serves(f, srv->port());
}

TEST_CASE("invalid UTF-8 in a String argument gets InvalidPayload and the session goes on", "[testbed][hostile][tcp]") {
  actor_fixture f;
  auto srv = start_testbed(f);
  auto lnk = handshaken(srv->port());
  auto send = [&](request_id id, payload args) {
    REQUIRE(lnk->send(encode_message(message{0, request_message{id, request_call{service_type::id<m::echo>(), {}, args, {}}}})));
  };
  send(1, payload{0x02, 0xc3, 0x28});
  auto m = next_message(*lnk);
  REQUIRE(m);
  auto ret = decode<m::echo::result_type>(std::get<request_response>(std::get<request_message>(m->payload).body).ret);
  REQUIRE(ret);
  REQUIRE_FALSE(ret->is_ok());
  CHECK(ret->err().index() == 2);
  send(3, payload{encode(m::echo::args_type{"fine"})});
  auto ok = next_message(*lnk);
  REQUIRE(ok);
  auto good = decode<m::echo::result_type>(std::get<request_response>(std::get<request_message>(ok->payload).body).ret);
  REQUIRE(good);
  CHECK(good->ok() == "fine");
}

TEST_CASE("wrong-parity and duplicate virtual-connection opens are rejected", "[testbed][hostile][tcp]") {
  actor_fixture f;
  auto srv = start_testbed(f);
  auto lnk = handshaken(srv->port()); // we are Odd: our ids must be odd
  auto open = [&](connection_id id) {
    REQUIRE(lnk->send(encode_message(message{id, connection_open{{parity::odd, 64}, {}}})));
    auto m = next_message(*lnk);
    REQUIRE(m);
    CHECK(m->connection_id == id);
    return m->payload.index();
  };
  CHECK(open(2) == 3);  // even id from the odd side: Reject
  CHECK(open(1) == 2);  // Accept
  CHECK(open(1) == 3);  // duplicate: Reject
  CHECK(open(0) == 3);  // the root: Reject
}

TEST_CASE("200 sequential and 50 concurrent sessions are all served", "[testbed][hostile][tcp]") {
  actor_fixture f;
  auto srv = start_testbed(f);
  for (int i = 0; i < 200; ++i) {
    auto lnk = tcp_connect("127.0.0.1", srv->port());
    REQUIRE(lnk);
    auto s = connect_session(f.sys, *lnk, logless());
    REQUIRE(s);
    {
      vox::client<service_type> tb{caller{s->root}};
      auto r = tb.call<m::echo_u64>(f.self, {static_cast<uint64_t>(i)}, wait_bound);
      REQUIRE(r);
      CHECK(r->ok() == static_cast<uint64_t>(i));
    } // the last caller is gone: the session ends and the socket closes
    CHECK(f.wait_down(s->actor));
  }
  std::vector<std::future<bool>> clients;
  for (int i = 0; i < 50; ++i)
    clients.push_back(f.async([&, i](caf::scoped_actor& a) {
      auto lnk = tcp_connect("127.0.0.1", srv->port());
      if (!lnk)
        return false;
      auto s = connect_session(f.sys, *lnk, logless());
      if (!s)
        return false;
      vox::client<service_type> tb{caller{s->root}};
      auto r = tb.call<m::echo>(a, {"c" + std::to_string(i)}, wait_bound);
      return r && r->ok() == "c" + std::to_string(i);
    }));
  int ok = 0;
  for (auto& c : clients)
    ok += c.get() ? 1 : 0;
  CHECK(ok == 50);
  CHECK(srv->sessions_started() >= 250);
}
