// Cancellation and max_concurrent_requests, enforced in both directions.
#include <catch2/catch.hpp>

#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

// r[verify rpc.cancel]
TEST_CASE("a cancelled call sends Cancel, fails locally and ignores a late Response", "[actors][flow]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind));
  caller root{peer.session.root};
  auto result = f.async([&](caf::scoped_actor& a) {
    caf::expected<call_response> out = caf::error{};
    outgoing_call call{1, {}, payload{}, nullptr, {}, 77};
    a->request(root.driver(), wait_bound, call_atom::value, call)
      .receive([&](call_response& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  });
  auto req = peer.recv_as<request_message>();
  REQUIRE(req);
  caf::anon_send(root.driver(), cancel_atom::value, uint64_t{77});
  auto cancel = peer.recv_as<request_message>();
  REQUIRE(cancel);
  CHECK(cancel->second.id == req->second.id);
  CHECK(std::holds_alternative<request_cancel>(cancel->second.body));
  auto r = result.get();
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::cancelled));
  // The late Response is dropped; the connection keeps working.
  peer.send(message{0, request_message{req->second.id, request_response{{}, payload{0x00}, {}}}});
  auto next = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, root, 2, payload{}); });
  auto req2 = peer.recv_as<request_message>();
  REQUIRE(req2);
  peer.send(message{0, request_message{req2->second.id, request_response{{}, payload{0x00, 0x09}, {}}}});
  auto r2 = next.get();
  REQUIRE(r2);
  CHECK(r2->ret == payload{0x00, 0x09});
}

TEST_CASE("a Cancel from the peer answers Cancelled once and the handler observes it", "[actors][flow]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto opts = logless();
  auto sinks = std::make_shared<std::promise<reply_sink>>();
  opts.root_handler = [sinks](incoming_call, reply_sink sink) { sinks->set_value(sink); };
  auto peer = make_raw_peer(f, session_role::acceptor, opts, link_pair(kind));
  peer.send(message{0, request_message{1, request_call{5, {}, payload{}, {}}}});
  auto sink = sinks->get_future().get();
  CHECK_FALSE(sink.cancelled());
  peer.send(message{0, request_message{1, request_cancel{}}});
  auto resp = peer.recv_as<request_message>();
  REQUIRE(resp);
  CHECK(std::get<request_response>(resp->second.body).ret == payload{0x01, 0x03});
  CHECK(sink.cancelled());
  sink.reply(payload{0x00}); // too late: ignored
  peer.send(message{0, ping{9}});
  auto next = peer.recv();
  REQUIRE(next);
  CHECK(std::holds_alternative<pong>(next->payload));
}

// r[verify rpc.flow-control.max-concurrent-requests]
TEST_CASE("outgoing calls beyond the peer's limit wait and go out in order", "[actors][flow]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  // The peer (the test) takes two requests at a time.
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind), {64, 2});
  caller root{peer.session.root};
  // Five calls, enqueued in this order (their answers go nowhere).
  for (uint8_t i = 0; i < 5; ++i)
    caf::anon_send(root.driver(), call_atom::value, outgoing_call{i, {}, payload{i}});
  std::vector<method_id_t> order;
  std::vector<request_message> open;
  while (order.size() < 5) {
    auto req = peer.recv_as<request_message>();
    REQUIRE(req);
    open.push_back(req->second);
    order.push_back(std::get<request_call>(req->second.body).method_id);
    if (open.size() == 2) {
      // Exactly two are out: nothing more arrives before one is answered.
      peer.send(message{0, ping{1}});
      auto m = peer.recv();
      REQUIRE(m);
      CHECK(std::holds_alternative<pong>(m->payload));
      auto first = open.front();
      open.erase(open.begin());
      peer.send(message{0, request_message{first.id, request_response{{}, payload{0x00}, {}}}});
    }
  }
  CHECK(order == std::vector<method_id_t>{0, 1, 2, 3, 4});
}

TEST_CASE("an inbound request beyond our limit is a protocol violation", "[actors][flow]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto opts = logless();
  auto kept = std::make_shared<std::vector<reply_sink>>();
  // Keeps every call open: the sinks live until the test ends.
  opts.root_handler = [kept](incoming_call, reply_sink sink) { kept->push_back(std::move(sink)); };
  auto peer = make_raw_peer(f, session_role::acceptor, opts, link_pair(kind), {2, 64});
  for (request_id id : {1u, 3u, 5u})
    peer.send(message{0, request_message{id, request_call{9, {}, payload{}, {}}}});
  auto err = peer.recv_as<protocol_error>();
  REQUIRE(err);
  CHECK(err->second.description.find("more than 2 concurrent requests") != std::string::npos);
  CHECK(peer.sees_eof());
}
