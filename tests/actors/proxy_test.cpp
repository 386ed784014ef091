// Splices (actors/proxy.hpp): what crosses, what is stripped, what is held, and how the
// end of either side ends the other.
#include <catch2/catch.hpp>

#include "actors/proxy.hpp"
#include "protocol/schema_gen.hpp"
#include "protocol/schema_tracker.hpp"
#include "support/sample_types.hpp"
#include "support/session_fixture.hpp"
#include "support/testbed_scenarios.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// Two raw peers whose sessions' roots are spliced: the test speaks Messages into `a`
/// (its session is the acceptor: the test allocates odd ids there) and reads what
/// comes out of `b` (initiator session: the test allocates even ids there).
struct raw_splice {
  raw_peer a;
  raw_peer b;
  connection_splice splice;
};

raw_splice make_raw_splice(actor_fixture& f, request_limits b_limits = {}, const std::string& kind = "memory") {
  raw_splice out;
  out.a = make_raw_peer(f, session_role::acceptor, logless(), link_pair(kind));
  out.b = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind), b_limits);
  auto s = proxy_connections(f.sys, out.a.session.root, out.b.session.root);
  if (!s)
    throw std::runtime_error("splice failed: " + describe(s.error()));
  out.splice = *s;
  return out;
}

message call_msg(request_id id, method_id_t method, payload args, metadata md = {}, byte_buffer schemas = {}) {
  return message{0, request_message{id, request_call{method, std::move(md), std::move(args), std::move(schemas)}}};
}

message response_msg(request_id id, payload ret, metadata md = {}, byte_buffer schemas = {}) {
  return message{0, request_message{id, request_response{std::move(md), std::move(ret), std::move(schemas)}}};
}

std::vector<uint64_t> schema_ids(const byte_buffer& cbor) {
  std::vector<uint64_t> out;
  if (auto p = schema::decode_schema_payload(cbor))
    for (auto& s : p->schemas)
      out.push_back(s.id);
  return out;
}

std::optional<schema::type_ref> schema_root(const byte_buffer& cbor) {
  auto p = schema::decode_schema_payload(cbor);
  if (!p)
    return std::nullopt;
  return p->root;
}

const metadata_entry plain{"trace", std::string{"t-1"}, metadata_flags::none};
const metadata_entry secret{"authorization", std::string{"Bearer x"}, metadata_flags::sensitive};
const metadata_entry local_only{"hop-local", uint64_t{7}, metadata_flags::no_propagate};
const metadata_entry unknown_bits{"future", std::string{"f"}, uint64_t{1} << 40};

} // namespace

// r[verify rpc.metadata.flags.no-propagate]
TEST_CASE("a splice forwards a call and its response with ids and payload unchanged and NO_PROPAGATE entries removed",
          "[proxy]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "tcp");
  INFO("links: " << kind);
  actor_fixture f;
  auto p = make_raw_splice(f, {}, kind);
  payload args{1, 2, 3, 4};
  p.a.send(call_msg(7, 0x1234, args, {plain, local_only, secret, unknown_bits}));
  auto call = next_call(p.b);
  REQUIRE(call);
  CHECK(call->id == 7);
  CHECK(call->call.method_id == 0x1234);
  CHECK(call->call.args == args);
  // Everything else passes with its flags, unknown bits included (r[rpc.metadata.flags]).
  CHECK(call->call.metadata == metadata{plain, secret, unknown_bits});

  payload ret{0x00, 9, 9};
  p.b.send(response_msg(7, ret, {local_only, plain}));
  auto resp = next_response(p.a);
  REQUIRE(resp);
  CHECK(resp->connection == 0);
  CHECK(resp->id == 7);
  CHECK(resp->response.ret == ret);
  CHECK(resp->response.metadata == metadata{plain});
}

TEST_CASE("a splice carries calls in both directions at once", "[proxy]") {
  actor_fixture f;
  auto p = make_raw_splice(f);
  p.a.send(call_msg(1, 10, payload{1}));
  p.b.send(call_msg(2, 20, payload{2})); // b's peer calls the other way, with its own parity
  auto at_b = next_call(p.b);
  auto at_a = next_call(p.a);
  REQUIRE(at_b);
  REQUIRE(at_a);
  CHECK(at_b->id == 1);
  CHECK(at_a->id == 2);
  CHECK(at_a->call.method_id == 20);
  p.a.send(response_msg(2, payload{0, 2}));
  p.b.send(response_msg(1, payload{0, 1}));
  auto ra = next_response(p.a);
  auto rb = next_response(p.b);
  REQUIRE(ra);
  REQUIRE(rb);
  CHECK(ra->id == 1);
  CHECK(rb->id == 2);
}

// r[verify schema.exchange]
TEST_CASE("a splice attaches each method's schemas once per outgoing connection, taken from what came in",
          "[proxy]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "tcp");
  INFO("links: " << kind);
  actor_fixture f;
  auto p = make_raw_splice(f, {}, kind);
  // What a real caller on `a` sends: each type once on its connection.
  schema::send_tracker caller;
  auto point_args = caller.prepare(schema::schema_payload_of<test::point>());
  auto nested_args = caller.prepare(schema::schema_payload_of<test::nested>());
  REQUIRE_FALSE(schema_ids(point_args).empty());

  p.a.send(call_msg(1, 100, payload{0}, {}, point_args));
  auto first = next_call(p.b);
  REQUIRE(first);
  CHECK(schema_ids(first->call.schemas) == schema_ids(point_args));
  CHECK(schema_root(first->call.schemas) == schema_root(point_args));

  p.a.send(call_msg(3, 100, payload{0})); // same method: nothing to attach
  auto second = next_call(p.b);
  REQUIRE(second);
  CHECK(second->call.schemas.empty());

  // A second method reusing Point: only what `b`'s peer has not seen goes out.
  p.a.send(call_msg(5, 200, payload{0}, {}, nested_args));
  auto third = next_call(p.b);
  REQUIRE(third);
  CHECK(schema_ids(third->call.schemas) == schema_ids(nested_args));
  CHECK(schema_root(third->call.schemas) == schema_root(nested_args));

  // Responses: the result's schemas cross with the method's first response only.
  schema::send_tracker callee;
  auto result = callee.prepare(schema::schema_payload_of<test::rect>());
  p.b.send(response_msg(1, payload{0, 1}, {}, result));
  p.b.send(response_msg(3, payload{0, 2}));
  auto r1 = next_response(p.a);
  auto r3 = next_response(p.a);
  REQUIRE(r1);
  REQUIRE(r3);
  CHECK(schema_ids(r1->response.schemas) == schema_ids(result));
  CHECK(schema_root(r1->response.schemas) == schema_root(result));
  CHECK(r3->response.schemas.empty());
  CHECK(f.info(p.a.session.actor).active_connections == 1); // nothing was a violation
  CHECK(f.info(p.b.session.actor).active_connections == 1);
}

TEST_CASE("a splice passes cancel, channel items, credit, close and reset through unchanged", "[proxy]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "tcp");
  INFO("links: " << kind);
  actor_fixture f;
  auto p = make_raw_splice(f, {}, kind);
  p.a.send(call_msg(1, 10, payload{}));
  REQUIRE(next_call(p.b));
  p.a.send(message{0, request_message{1, request_cancel{{plain, local_only}}}});
  auto cancel = p.b.recv_as<request_message>();
  REQUIRE(cancel);
  CHECK(cancel->second.id == 1);
  REQUIRE(std::holds_alternative<request_cancel>(cancel->second.body));
  CHECK(std::get<request_cancel>(cancel->second.body).metadata == metadata{plain});

  std::vector<std::pair<raw_peer*, channel_message>> sent{
    {&p.a, channel_message{3, channel_item{payload{5, 6}}}},
    {&p.b, channel_message{3, channel_grant_credit{16}}},
    {&p.a, channel_message{3, channel_close{{plain, local_only}}}},
    {&p.b, channel_message{4, channel_item{payload{7}}}},
    {&p.a, channel_message{4, channel_reset{{local_only}}}},
  };
  for (auto& [from, cm] : sent) {
    from->send(message{0, cm});
    auto& to = from == &p.a ? p.b : p.a;
    auto got = to.recv_as<channel_message>();
    REQUIRE(got);
    CHECK(got->first == 0);
    auto expected = cm;
    if (auto* c = std::get_if<channel_close>(&expected.body))
      c->metadata = propagated(c->metadata);
    if (auto* r = std::get_if<channel_reset>(&expected.body))
      r->metadata = propagated(r->metadata);
    CHECK(got->second == expected);
  }
}

// r[verify rpc.flow-control.max-concurrent-requests]
TEST_CASE("a splice holds calls beyond what the outgoing peer allows and answers a held call that is cancelled",
          "[proxy]") {
  actor_fixture f;
  auto p = make_raw_splice(f, request_limits{64, 1}); // b's peer takes one call at a time
  p.a.send(call_msg(1, 10, payload{1}));
  p.a.send(call_msg(3, 10, payload{3}));
  p.a.send(call_msg(5, 10, payload{5}));
  auto first = next_call(p.b);
  REQUIRE(first);
  CHECK(first->id == 1);
  // Call 3 is held: cancelling it is answered by the splice, and it never reaches b.
  p.a.send(message{0, request_message{3, request_cancel{}}});
  auto cancelled = next_response(p.a);
  REQUIRE(cancelled);
  CHECK(cancelled->id == 3);
  CHECK(cancelled->response.ret == cancelled_response());
  p.b.send(response_msg(1, payload{0, 1}));
  auto r1 = next_response(p.a);
  REQUIRE(r1);
  CHECK(r1->id == 1);
  auto next = next_call(p.b);
  REQUIRE(next);
  CHECK(next->id == 5);
}

TEST_CASE("a splice refuses two connections on which we allocate ids of the same parity", "[proxy]") {
  actor_fixture f;
  auto a = make_raw_peer(f, session_role::initiator, logless());
  auto b = make_raw_peer(f, session_role::initiator, logless());
  auto s = proxy_connections(f.sys, a.session.root, b.session.root);
  REQUIRE_FALSE(s);
  CHECK(describe(s.error()).find("parity") != std::string::npos);
  // Nothing was routed: a's root still answers calls itself (UnknownMethod, no handler).
  a.send(call_msg(1, 10, payload{}));
  auto r = next_response(a);
  REQUIRE(r);
  CHECK(r->response.ret == unknown_method_response());
}

TEST_CASE("a peer that closes one side of a splice ends the session on the other side's root", "[proxy]") {
  actor_fixture f;
  auto p = make_raw_splice(f);
  p.a.send(call_msg(1, 10, payload{}));
  REQUIRE(next_call(p.b));
  p.b.send(message{0, connection_close{}});
  // The root of a's session is closed internally (behaviour 113); with no virtual
  // connection left, a's session ends and its peer sees the end of the link.
  CHECK(p.a.sees_eof());
  CHECK(f.wait_down(p.a.session.actor));
}

TEST_CASE("a splice ends when a peer breaks a rule, and that peer gets the ProtocolError", "[proxy]") {
  actor_fixture f;
  auto p = make_raw_splice(f);
  p.a.send(call_msg(1, 10, payload{}, {}, byte_buffer{0xff, 0x00}));
  auto err = p.a.recv_as<protocol_error>();
  REQUIRE(err);
  CHECK(err->second.description.find("schemas") != std::string::npos);
  CHECK(p.b.sees_eof()); // b's root closed with the splice; its session ends with it
}

namespace {

/// client ── gateway (splices each of its connections) ── server, in one actor system.
struct gateway_path {
  session_pair down; ///< client ↔ gateway
  session_pair up;   ///< gateway ↔ server
};

/// The gateway's downstream options: every virtual connection the client opens is
/// spliced to a new virtual connection on `up`.
session_options splicing_acceptor(caf::actor_system& sys, std::shared_ptr<session_actor> up) {
  auto opts = logless();
  opts.acceptor = [&sys, up](connection_id, const connection_settings& peer, const metadata& md)
    -> std::variant<accept_connection, reject_connection> {
    auto splice = connection_splice::make(sys, logless().log);
    auto yes = splice.accept(peer);
    if (!yes || !splice.open(*up, {parity::odd, 64}, md)) {
      splice.stop();
      return reject_connection{};
    }
    return std::move(*yes);
  };
  return opts;
}

gateway_path make_gateway_path(actor_fixture& f, const std::string& kind, session_options server) {
  gateway_path out;
  auto up_actor = std::make_shared<session_actor>();
  out.up = make_session_pair(f, link_pair(kind), logless(), std::move(server));
  *up_actor = out.up.client.actor;
  out.down = make_session_pair(f, link_pair(kind), logless(), splicing_acceptor(f.sys, up_actor));
  auto s = proxy_connections(f.sys, out.down.server.root, out.up.client.root);
  if (!s)
    throw std::runtime_error("splice failed: " + describe(s.error()));
  return out;
}

} // namespace

TEST_CASE("every Testbed scenario passes through a splice", "[proxy][testbed]") {
  auto kind = GENERATE(as<std::string>{}, "memory", "tcp");
  actor_fixture f;
  auto path = make_gateway_path(f, kind, testbed::serving_options());
  vox::client<testbed::service_type> root{caller{path.down.client.root}};
  testbed::scenario_context ctx{f.sys, f.self, root};
  CHECK(check_scenarios(ctx, false, kind + " root: ") > 25);
  // A virtual connection the client opens is spliced to one the gateway opens upstream.
  auto conn = f.open(path.down.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  vox::client<testbed::service_type> virt{caller{*conn}};
  testbed::scenario_context vctx{f.sys, f.self, virt};
  check_scenarios(vctx, false, kind + " virtual: ");
}

TEST_CASE("every Testbed scenario passes through two splices in a chain", "[proxy][testbed]") {
  actor_fixture f;
  auto far = make_gateway_path(f, "tcp", testbed::serving_options());
  // The second gateway's upstream is the first gateway's downstream acceptor.
  auto up_actor = std::make_shared<session_actor>(far.down.client.actor);
  auto front = make_session_pair(f, link_pair("tcp"), logless(), splicing_acceptor(f.sys, up_actor));
  REQUIRE(proxy_connections(f.sys, front.server.root, far.down.client.root));
  vox::client<testbed::service_type> root{caller{front.client.root}};
  testbed::scenario_context ctx{f.sys, f.self, root};
  CHECK(check_scenarios(ctx, false, "chained: ") > 25);
}

namespace {

/// A server whose handler keeps every call unanswered; records its connections.
struct holding_server {
  std::mutex mtx;
  std::vector<connection_handle> opened;
  std::vector<reply_sink> held;
  std::promise<void> first_call;

  session_options options() {
    auto opts = logless();
    opts.acceptor = [this](connection_id, const connection_settings& peer, const metadata&)
      -> std::variant<accept_connection, reject_connection> {
      accept_connection yes;
      yes.settings = {opposite(peer.parity), 64};
      yes.handler = [this](incoming_call, reply_sink sink) {
        std::lock_guard<std::mutex> guard{mtx};
        held.push_back(std::move(sink));
        if (held.size() == 1)
          first_call.set_value();
      };
      yes.on_open = [this](const connection_handle& h) {
        std::lock_guard<std::mutex> guard{mtx};
        opened.push_back(h);
      };
      return yes;
    };
    return opts;
  }

  connection_handle only_connection() {
    std::lock_guard<std::mutex> guard{mtx};
    return opened.size() == 1 ? opened.front() : connection_handle{};
  }
};

} // namespace

TEST_CASE("closing a spliced virtual connection on one side closes the other and fails calls pending through it",
          "[proxy]") {
  actor_fixture f;
  holding_server server;
  auto reached = server.first_call.get_future();
  auto path = make_gateway_path(f, "tcp", server.options());
  auto conn = f.open(path.down.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  caller c{*conn};
  auto pending = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, c, 10, payload{}); });
  REQUIRE(reached.wait_for(wait_bound) == std::future_status::ready);
  auto upstream = server.only_connection();
  REQUIRE(upstream.driver);

  SECTION("the server closes: the client's pending call fails with ConnectionClosed") {
    CHECK_FALSE(f.close(path.up.server.actor, upstream.id));
    auto result = pending.get();
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::connection_closed));
  }

  SECTION("the client closes: the server's side of the connection closes") {
    CHECK_FALSE(f.close(path.down.client.actor, conn->id));
    CHECK(f.wait_down(upstream.driver));
    CHECK_FALSE(pending.get()); // closed locally: the caller's call failed too
  }
}

// Sessions that outlive a splice of two of their virtual connections must not keep it.
TEST_CASE("a splice of two virtual connections is freed when it ends while its sessions go on", "[proxy]") {
  actor_fixture f;
  auto opened = std::make_shared<std::vector<connection_handle>>();
  auto pair = make_echo_pair(f, opened);
  caf::actor_addr gone;
  {
    auto one = f.open(pair.client.actor, {parity::odd, 64});
    auto two = f.open(pair.client.actor, {parity::odd, 64});
    REQUIRE(one);
    REQUIRE(two);
    REQUIRE(opened->size() == 2);
    // Our side of the first with the server's side of the second (odd and even ids).
    auto s = proxy_connections(f.sys, *one, opened->back());
    REQUIRE(s);
    opened->clear();
    auto proxy = s->actor();
    gone = proxy.address();
    s->stop();
    CHECK(f.wait_down(proxy));
  } // the test's strong references go here
  CHECK(eventually([&] { return only_this_reference_left(gone); }));
  CHECK(f.info(pair.client.actor).active_connections >= 1); // both sessions are still up
  CHECK(f.info(pair.server.actor).active_connections >= 1);
}

// A link break crosses the splice (actors/proxy.hpp): the other link is cut, and once both
// sessions resumed, a call in flight at the break is answered or sent again and every
// method's schemas cross again, since each peer forgot what it had seen.
// r[verify schema.exchange]
TEST_CASE("a splice passes a resume on one side to the other, forwards what was in flight, and sends schemas again",
          "[proxy][retry]") {
  actor_fixture f;
  auto resumable = logless();
  resumable.resumable = true;
  raw_splice p;
  p.a = make_raw_peer(f, session_role::acceptor, resumable);
  p.b = make_raw_peer(f, session_role::initiator, resumable);
  auto s = proxy_connections(f.sys, p.a.session.root, p.b.session.root);
  REQUIRE(s);
  schema::send_tracker caller;
  auto point_args = caller.prepare(schema::schema_payload_of<test::point>());
  schema::send_tracker callee;
  auto result = callee.prepare(schema::schema_payload_of<test::rect>());

  p.a.send(call_msg(1, 100, payload{1}, {}, point_args));
  REQUIRE(next_call(p.b));
  p.b.send(response_msg(1, payload{0, 1}, {}, result));
  auto r1 = next_response(p.a);
  REQUIRE(r1);
  CHECK_FALSE(r1->response.schemas.empty());
  p.a.send(call_msg(3, 100, payload{3}));
  p.a.send(call_msg(5, 100, payload{5}));
  REQUIRE(next_call(p.b));
  REQUIRE(next_call(p.b)); // 3 and 5 are in flight when b's link breaks

  REQUIRE_FALSE(resume_raw_peer(f, p.b, session_role::initiator, 1));
  CHECK(p.a.sees_eof()); // the splice cut a's link: its peer sees the break too
  REQUIRE_FALSE(resume_raw_peer(f, p.a, session_role::acceptor, 1));

  // a's peer forgot what it sent: its next call of method 100 carries the schemas again,
  // and it sends call 5 again (as a caller with retry does); b's peer gets both.
  schema::send_tracker caller_again;
  p.a.send(call_msg(7, 100, payload{7}, {}, caller_again.prepare(schema::schema_payload_of<test::point>())));
  p.a.send(call_msg(5, 100, payload{5}));
  auto c7 = next_call(p.b);
  auto c5 = next_call(p.b);
  REQUIRE(c7);
  REQUIRE(c5);
  CHECK(c7->id == 7);
  CHECK(schema_ids(c7->call.schemas) == schema_ids(point_args)); // b's peer forgot them
  CHECK(c5->id == 5);
  CHECK(c5->call.schemas.empty());

  // b answers call 3 from before the break: its caller may still wait for it.
  schema::send_tracker callee_again;
  p.b.send(response_msg(3, payload{0, 3}, {}, callee_again.prepare(schema::schema_payload_of<test::rect>())));
  p.b.send(response_msg(5, payload{0, 5}));
  auto r3 = next_response(p.a);
  auto r5 = next_response(p.a);
  REQUIRE(r3);
  REQUIRE(r5);
  CHECK(r3->id == 3);
  CHECK(schema_ids(r3->response.schemas) == schema_ids(result)); // a's peer forgot them
  CHECK(r5->id == 5);
  CHECK(r5->response.schemas.empty());
  CHECK(f.info(p.a.session.actor).resumes == 1);
  CHECK(f.info(p.b.session.actor).resumes == 1);
}

TEST_CASE("a splice whose other session cannot resume ends when one side resumes, instead of cutting that link",
          "[proxy][retry]") {
  actor_fixture f;
  auto resumable = logless();
  resumable.resumable = true;
  auto a = make_raw_peer(f, session_role::acceptor, logless());
  auto b = make_raw_peer(f, session_role::initiator, resumable);
  session_options splice_log;
  auto rec = log_recorder::attach(splice_log);
  auto splice = connection_splice::make(f.sys, splice_log.log);
  REQUIRE(splice.attach(a.session.root));
  REQUIRE(splice.attach(b.session.root));
  a.send(call_msg(1, 100, payload{1}));
  REQUIRE(next_call(b));
  REQUIRE_FALSE(resume_raw_peer(f, b, session_role::initiator, 1));
  CHECK(rec->wait_for("cannot resume to pass the break on"));
  CHECK(a.sees_eof()); // its root closed with the splice, which ends its session
}
