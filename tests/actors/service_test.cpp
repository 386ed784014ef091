// Typed services over sessions: dispatch, errors, and schemas once per method per connection.
#include <catch2/catch.hpp>

#include "actors/service.hpp"
#include "protocol/schema_tracker.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

enum class math_error : uint8_t { division_by_zero, overflow };
VOX_ENUM(math_error, "MathError", "DivisionByZero", "Overflow")

using echo = method<"echo", std::string(std::string)>;
using reverse = method<"reverse", std::string(std::string)>;
using divide = method<"divide", int64_t(int64_t, int64_t), math_error>;
using testbed = service<"Testbed", echo, reverse, divide>;

call_handler testbed_handler() {
  service_dispatcher<testbed> d;
  d.on<echo>([](std::string s, responder<testbed, echo> r) { r.ok(std::move(s)); });
  d.on<reverse>([](std::string s, responder<testbed, reverse> r) { r.ok(std::string{s.rbegin(), s.rend()}); });
  d.on<divide>([](int64_t a, int64_t b, responder<testbed, divide> r) {
    if (b == 0)
      r.err(math_error::division_by_zero);
    else
      r.ok(a / b);
  });
  return d.handler();
}

} // namespace

TEST_CASE("typed calls reach typed handlers and return typed results", "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto pair = make_session_pair(f, link_pair(kind), logless(), serving(testbed_handler()));
  client<testbed> c{caller{pair.client.root}};
  auto e = c.call<echo>(f.self, {"hi"}, wait_bound);
  REQUIRE(e);
  REQUIRE(e->is_ok());
  CHECK(e->ok() == "hi");
  auto r = c.call<reverse>(f.self, {"hello"}, wait_bound);
  REQUIRE(r);
  CHECK(r->ok() == "olleh");
  auto q = c.call<divide>(f.self, {10, 3}, wait_bound);
  REQUIRE(q);
  CHECK(q->ok() == 3);
  auto z = c.call<divide>(f.self, {10, 0}, wait_bound);
  REQUIRE(z);
  REQUIRE_FALSE(z->is_ok());
  CHECK(z->err() == vox_error<math_error>{std::in_place_index<0>, math_error::division_by_zero});
}

// r[verify rpc.error.scope]
TEST_CASE("an unknown method gets UnknownMethod and undecodable args get InvalidPayload; the connection stays open",
          "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::acceptor, serving(testbed_handler()), link_pair(kind));
  peer.send(message{0, request_message{1, request_call{12345, {}, payload{}, {}}}});
  auto r1 = peer.recv_as<request_message>();
  REQUIRE(r1);
  CHECK(std::get<request_response>(r1->second.body).ret == payload{0x01, 0x01});
  // echo with a string whose length runs past the end, then invalid UTF-8.
  for (auto bad : {payload{0x05, 0x61}, payload{0x02, 0xc3, 0x28}}) {
    peer.send(message{0, request_message{3, request_call{testbed::id<echo>(), {}, bad, {}}}});
    auto r = peer.recv_as<request_message>();
    REQUIRE(r);
    auto ret = decode<echo::result_type>(std::get<request_response>(r->second.body).ret);
    REQUIRE(ret);
    REQUIRE_FALSE(ret->is_ok());
    CHECK(ret->err().index() == 2); // InvalidPayload
  }
  peer.send(message{0, request_message{5, request_call{testbed::id<echo>(), {}, payload{encode(echo::args_type{"ok"})}, {}}}});
  auto good = peer.recv_as<request_message>();
  REQUIRE(good);
  auto ret = decode<echo::result_type>(std::get<request_response>(good->second.body).ret);
  REQUIRE(ret);
  CHECK(ret->ok() == "ok");
}

// r[verify schema.exchange]
TEST_CASE("schemas go with the first call and response of each method on each connection", "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, serving(testbed_handler()), link_pair(kind));
  client<testbed> c{caller{peer.session.root}};
  auto call_once = [&](auto method_tag, typename decltype(method_tag)::type::args_type args) {
    using M = typename decltype(method_tag)::type;
    caf::anon_send(c.get_caller().driver(), call_atom::value, *c.make_call<M>(args));
    auto req = peer.recv_as<request_message>();
    REQUIRE(req);
    auto call = std::get<request_call>(req->second.body);
    peer.send(message{0, request_message{req->second.id, request_response{{}, payload{0x00, 0x00}, {}}}});
    return call.schemas;
  };
  struct echo_tag { using type = echo; };
  struct reverse_tag { using type = reverse; };
  auto first = call_once(echo_tag{}, {"a"});
  REQUIRE_FALSE(first.empty());
  auto p = schema::decode_schema_payload(first);
  REQUIRE(p);
  CHECK(p->schemas.size() == 2);
  CHECK(call_once(echo_tag{}, {"b"}).empty()); // second call of the same method: nothing
  auto other = schema::decode_schema_payload(call_once(reverse_tag{}, {"c"}));
  REQUIRE(other);
  CHECK(other->schemas.empty()); // same types, already sent: only the root goes out
  CHECK(other->root == p->root);
  // Responses: the peer (our raw side) calls the session's handler twice.
  for (request_id id : {2u, 4u}) {
    peer.send(message{0, request_message{id, request_call{testbed::id<echo>(), {}, payload{encode(echo::args_type{"x"})}, {}}}});
    auto resp = peer.recv_as<request_message>();
    REQUIRE(resp);
    auto& body = std::get<request_response>(resp->second.body);
    if (id == 2) {
      auto rp = schema::decode_schema_payload(body.schemas);
      REQUIRE(rp);
      CHECK(rp->root.type_id == 0x42046de663beeef0ull);
      for (auto& s : rp->schemas)
        CHECK(s.id != 0x6d7dce914ee150e8ull); // string already went out with our calls
    } else {
      CHECK(body.schemas.empty());
    }
  }
}

TEST_CASE("schemas are sent again on a new connection", "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto server = logless();
  server.acceptor = [](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, testbed_handler(), {}};
  };
  server.root_handler = testbed_handler();
  auto pair = make_session_pair(f, link_pair(kind), logless(), server);
  client<testbed> root{caller{pair.client.root}};
  REQUIRE(root.call<echo>(f.self, {"root"}, wait_bound));
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  client<testbed> v{caller{*conn}};
  // The server's receive tracker is per connection: the same schemas again are no duplicate.
  auto r = v.call<echo>(f.self, {"virtual"}, wait_bound);
  REQUIRE(r);
  CHECK(r->ok() == "virtual");
  REQUIRE(root.call<echo>(f.self, {"root again"}, wait_bound));
}

TEST_CASE("a repeated schema from the peer is a protocol error that ends the session", "[actors][service]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::acceptor, serving(testbed_handler()));
  schema::send_tracker naive_a, naive_b;
  auto args = payload{encode(echo::args_type{"x"})};
  peer.send(message{0, request_message{1, request_call{testbed::id<echo>(), {}, args, naive_a.prepare(testbed::schemas<echo>().args)}}});
  REQUIRE(peer.recv_as<request_message>());
  peer.send(message{0, request_message{3, request_call{testbed::id<echo>(), {}, args, naive_b.prepare(testbed::schemas<echo>().args)}}});
  auto err = peer.recv_as<protocol_error>();
  REQUIRE(err);
  CHECK(err->first == 0);
  CHECK(err->second.description.find("twice") != std::string::npos);
  CHECK(peer.sees_eof());
}

TEST_CASE("malformed schema CBOR from the peer is a protocol error, never a crash", "[actors][service]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::acceptor, serving(testbed_handler()));
  peer.send(message{0, request_message{1, request_call{testbed::id<echo>(), {}, payload{encode(echo::args_type{"x"})},
                                                       {0xa2, 0x67, 0x73}}}});
  auto err = peer.recv_as<protocol_error>();
  REQUIRE(err);
  CHECK(peer.sees_eof());
}

TEST_CASE("a slow handler does not block other calls on the same connection", "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto opts = logless();
  auto held = std::make_shared<std::promise<reply_sink>>();
  service_dispatcher<testbed> d;
  d.on<reverse>([held](std::string, responder<testbed, reverse> r) { held->set_value(r.sink()); });
  d.on<echo>([](std::string s, responder<testbed, echo> r) { r.ok(std::move(s)); });
  opts.root_handler = d.handler();
  auto pair = make_session_pair(f, link_pair(kind), logless(), opts);
  client<testbed> c{caller{pair.client.root}};
  auto slow = f.async([&](caf::scoped_actor& a) { return c.call<reverse>(a, {"slow"}, wait_bound); });
  auto sink = held->get_future().get(); // the slow call is being handled and holds its answer
  for (int i = 0; i < 10; ++i) {
    auto r = c.call<echo>(f.self, {"fast" + std::to_string(i)}, wait_bound);
    REQUIRE(r);
    CHECK(r->ok() == "fast" + std::to_string(i));
  }
  sink.reply(payload{encode(reverse::result_type{std::in_place_index<0>, "done"})});
  auto s = slow.get();
  REQUIRE(s);
  CHECK(s->ok() == "done");
}

// r[verify rpc.cancel]
// r[verify schema.exchange]
TEST_CASE("a Cancelled answer is the method's first response and carries its response schemas", "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto held = std::make_shared<std::vector<responder<testbed, reverse>>>();
  service_dispatcher<testbed> d;
  // reverse keeps its responder (and never answers); echo drops its responder unanswered.
  d.on<reverse>([held](std::string, responder<testbed, reverse> r) { held->push_back(r); });
  d.on<echo>([](std::string, responder<testbed, echo>) {});
  auto peer = make_raw_peer(f, session_role::acceptor, serving(d.handler()), link_pair(kind));
  auto response_to = [&](request_id id) -> std::optional<request_response> {
    auto r = peer.recv_as<request_message>();
    if (!r || r->second.id != id || !std::holds_alternative<request_response>(r->second.body))
      return std::nullopt;
    return std::get<request_response>(r->second.body);
  };
  auto args = payload{encode(reverse::args_type{"x"})};
  peer.send(message{0, request_message{1, request_call{testbed::id<reverse>(), {}, args, {}}}});
  peer.send(message{0, request_message{1, request_cancel{}}});
  auto cancelled = response_to(1);
  REQUIRE(cancelled);
  CHECK(cancelled->ret == payload{0x01, 0x03});
  auto rp = schema::decode_schema_payload(cancelled->schemas);
  REQUIRE(rp);
  CHECK(rp->root.type_id == 0x42046de663beeef0ull); // Result<String, VoxError<never>>
  // The second response of the method carries none, whatever its kind.
  peer.send(message{0, request_message{3, request_call{testbed::id<reverse>(), {}, args, {}}}});
  peer.send(message{0, request_message{3, request_cancel{}}});
  auto second = response_to(3);
  REQUIRE(second);
  CHECK(second->schemas.empty());
  // A handler that drops its responder: Cancelled, again with the schemas.
  peer.send(message{0, request_message{5, request_call{testbed::id<echo>(), {}, args, {}}}});
  auto dropped = response_to(5);
  REQUIRE(dropped);
  CHECK(dropped->ret == payload{0x01, 0x03});
  CHECK_FALSE(dropped->schemas.empty());
}

TEST_CASE("metadata and its flags travel on calls and responses unchanged", "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  metadata sent{{"trace", std::string{"t-1"}, metadata_flags::none},
                {"token", std::string{"s3cr3t"}, metadata_flags::sensitive},
                {"hop", uint64_t{3}, metadata_flags::no_propagate},
                {"blob", bytes{0x00, 0xff}, metadata_flags::sensitive | metadata_flags::no_propagate}};
  auto seen = std::make_shared<std::promise<metadata>>();
  auto server = logless();
  server.root_handler = [seen](incoming_call in, reply_sink sink) {
    // A proxy forwards only what may propagate; the reply carries that back.
    auto forwarded = propagated(in.metadata);
    seen->set_value(std::move(in.metadata));
    sink.reply(payload{encode(call_result<unit>{std::in_place_index<0>, unit{}})}, forwarded);
  };
  auto pair = make_session_pair(f, link_pair(kind), logless(), server);
  caller root{pair.client.root};
  caf::expected<call_response> got = caf::error{};
  f.self->request(root.driver(), wait_bound, call_atom::value, outgoing_call{7, sent, payload{}})
    .receive([&](call_response& r) { got = std::move(r); }, [&](caf::error& e) { got = std::move(e); });
  REQUIRE(got);
  CHECK(seen->get_future().get() == sent);
  CHECK(got->metadata == metadata{sent[0], sent[1]});
  // Diagnostics show the entry but never a sensitive value.
  auto text = to_string(message{0, request_message{1, request_call{7, sent, payload{}, {}}}});
  CHECK(text.find("s3cr3t") == std::string::npos);
  CHECK(text.find("\"token\"") != std::string::npos);
}

// r[verify rpc.cancel]
TEST_CASE("typed calls carry call metadata to the handler and can be cancelled by tag", "[actors][service]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto seen = std::make_shared<std::promise<metadata>>();
  auto held = std::make_shared<std::promise<responder<testbed, reverse>>>();
  service_dispatcher<testbed> d;
  d.on<echo>([seen](std::string s, responder<testbed, echo> r) {
    if (s == "with metadata")
      seen->set_value(r.call_metadata());
    r.ok(std::move(s));
  });
  d.on<reverse>([held](std::string, responder<testbed, reverse> r) { held->set_value(r); });
  auto pair = make_session_pair(f, link_pair(kind), logless(), serving(d.handler()));
  client<testbed> c{caller{pair.client.root}};
  metadata md{{"trace", std::string{"t-9"}, metadata_flags::none},
              {"token", std::string{"k"}, metadata_flags::sensitive}};
  REQUIRE(c.call<echo>(f.self, {"with metadata"}, wait_bound, call_options{md, 0}));
  CHECK(seen->get_future().get() == md);
  // A call the handler holds; cancelling it by tag fails it here and tells the handler.
  auto tag = new_cancel_tag();
  auto slow = f.async([&](caf::scoped_actor& a) { return c.call<reverse>(a, {"slow"}, wait_bound, call_options{{}, tag}); });
  auto r = held->get_future().get();
  CHECK_FALSE(r.sink().cancelled());
  c.cancel(tag);
  auto out = slow.get();
  REQUIRE_FALSE(out);
  CHECK(is(out.error(), errc::cancelled));
  // The peer handles its connection's messages in order: once a later call is answered,
  // the Cancel has been seen.
  REQUIRE(c.call<echo>(f.self, {"after"}, wait_bound));
  CHECK(r.sink().cancelled());
}
