// RPC rules that had an implementation but no test of their own: the connection's handler,
// one response per request, root teardown once callers are gone, and the wire form of
// channel arguments (bound ids of the caller's parity, ids as varints, items as postcard).
//
// The channel tests look only at the caller side (vox::channel, client::call, tx.send,
// rx.recv_for) against a raw peer that reads and writes the Messages by hand.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "actors/channel.hpp"
#include "actors/service.hpp"
#include "protocol/schema.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

// -- rpc.handler -------------------------------------------------------------------------

/// What a handler saw of one call.
struct seen_call {
  connection_id connection = 0;
  request_id id = 0;
  method_id_t method = 0;
  vox::metadata metadata;
  payload args;
};

struct call_log {
  std::mutex mtx;
  std::vector<seen_call> calls;

  std::vector<seen_call> snapshot() {
    std::lock_guard<std::mutex> guard{mtx};
    return calls;
  }
};

constexpr method_id_t throwing_method = 0xbad;

/// Records each call, then answers Ok(args) with response metadata "handled-by" = `name`.
/// Throws for `throwing_method` without answering.
call_handler recording_handler(std::shared_ptr<call_log> log, std::string name) {
  return [log, name](incoming_call in, reply_sink sink) {
    {
      std::lock_guard<std::mutex> guard{log->mtx};
      log->calls.push_back({in.connection, in.id, in.method_id, in.metadata, in.args});
    }
    if (in.method_id == throwing_method)
      throw std::runtime_error("handler failed");
    payload ret{0x00};
    ret.insert(ret.end(), in.args.begin(), in.args.end());
    sink.reply(std::move(ret), vox::metadata{{"handled-by", std::string{name}, 0}});
  };
}

// -- rpc.response.one-per-request --------------------------------------------------------

/// Reply sinks a handler hands over to the test.
struct sink_queue {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<reply_sink> sinks;

  void push(reply_sink s) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      sinks.push_back(std::move(s));
    }
    cv.notify_all();
  }

  /// The next sink, or nullopt after `wait_bound`.
  std::optional<reply_sink> pop() {
    std::unique_lock<std::mutex> guard{mtx};
    if (!cv.wait_for(guard, wait_bound, [this] { return !sinks.empty(); }))
      return std::nullopt;
    auto s = std::move(sinks.front());
    sinks.pop_front();
    return s;
  }
};

message call_message(connection_id conn, request_id id, method_id_t method, payload args,
                     vox::metadata md = {}) {
  return message{conn, request_message{id, request_call{method, std::move(md), std::move(args), {}}}};
}

// -- channels ----------------------------------------------------------------------------

using sum = method<"sum", int64_t(rx<int32_t>)>;
using generate = method<"generate", void(uint32_t, tx<int32_t>)>;
using mixed = method<"mixed", void(uint32_t, rx<std::string>, tx<int32_t>, std::string)>;
using streams = service<"Testbed", sum, generate, mixed>;

/// The next ChannelMessage the raw peer receives: {connection, channel message}.
std::optional<std::pair<connection_id, channel_message>> next_channel_message(raw_peer& peer) {
  return peer.recv_as<channel_message>();
}

template <class M>
message ok_response(connection_id conn, request_id id, typename M::ok_type value) {
  typename M::result_type r{std::in_place_index<0>, std::move(value)};
  return message{conn, request_message{id, request_response{{}, payload{encode(r)}, {}}}};
}

/// Calls `sum` and `generate` on `c`, whose connection is `conn` with local parity giving
/// `first` as its first channel id, and checks on the wire that each channel end passed in
/// the arguments was given the next id of that parity and is bound to it: items the caller
/// sends go out under that id, items the peer sends under it reach the end the caller kept.
void check_channel_binding(actor_fixture& f, raw_peer& peer, caller c, connection_id conn,
                           channel_id first) {
  INFO("connection " << conn << ", first channel id " << first);
  client<streams> cl{std::move(c)};

  // Rx<i32> in the arguments: the caller keeps the Tx and sends.
  auto [out, in] = channel<int32_t>();
  auto summed = f.async([cl, in = in](caf::scoped_actor& a) { return cl.call<sum>(a, {in}, wait_bound); });
  auto call = next_call(peer);
  REQUIRE(call);
  CHECK(call->connection == conn);
  CHECK(call->call.method_id == streams::id<sum>());
  CHECK(to_hex(call->call.args) == to_hex(byte_buffer{static_cast<uint8_t>(first)}));
  REQUIRE(out.send_for(7, wait_bound));
  auto item = next_channel_message(peer);
  REQUIRE(item);
  CHECK(item->first == conn);
  CHECK(item->second.id == first);
  REQUIRE(std::holds_alternative<channel_item>(item->second.body));
  CHECK(std::get<channel_item>(item->second.body).item == payload{encode(int32_t{7})});
  out.close();
  auto closed = next_channel_message(peer);
  REQUIRE(closed);
  CHECK(closed->first == conn);
  CHECK(closed->second.id == first);
  CHECK(std::holds_alternative<channel_close>(closed->second.body));
  peer.send(ok_response<sum>(conn, call->id, 7));
  auto total = summed.get();
  REQUIRE(total);
  CHECK(total->ok() == 7);

  // Tx<i32> in the arguments: the caller keeps the Rx and receives. Ids are not reused:
  // this channel gets the next id of the same parity.
  auto [out2, in2] = channel<int32_t>();
  auto generated = f.async([cl, out2 = out2](caf::scoped_actor& a) {
    return cl.call<generate>(a, {3, out2}, wait_bound);
  });
  auto call2 = next_call(peer);
  REQUIRE(call2);
  CHECK(call2->connection == conn);
  auto second = first + 2;
  CHECK(to_hex(call2->call.args) == to_hex(byte_buffer{0x03, static_cast<uint8_t>(second)}));
  peer.send(message{conn, channel_message{second, channel_item{payload{encode(int32_t{42})}}}});
  auto got = in2.recv_for(wait_bound);
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == 42);
  peer.send(message{conn, channel_message{second, channel_close{}}});
  auto end = in2.recv_for(wait_bound);
  REQUIRE(end);
  CHECK_FALSE(*end);
  peer.send(ok_response<generate>(conn, call2->id, unit{}));
  REQUIRE(generated.get());
}

/// A type id as hex, so that a failed comparison shows both ids.
std::string hex_id(uint64_t id) {
  std::ostringstream out;
  out << "0x" << std::hex << id;
  return out.str();
}

const schema::schema* find_schema(const schema::schema_payload& sp, uint64_t id) {
  for (const auto& s : sp.schemas)
    if (s.id == id)
      return &s;
  return nullptr;
}

// Type ids of the reference (testbed-service.md §2).
constexpr uint64_t tx_schema_id = 0xc886545a493d06ebull;
constexpr uint64_t rx_schema_id = 0x967a48ac345e2f5eull;
constexpr uint64_t u32_schema_id = 0x281c5be4f2ee63b4ull;
constexpr uint64_t i32_schema_id = 0x361f4536eee9f991ull;
constexpr uint64_t string_schema_id = 0x6d7dce914ee150e8ull;
constexpr uint64_t tuple4_schema_id = 0x915c6fb5b64f270bull;

} // namespace

// r[verify rpc.handler]
TEST_CASE("each connection's handler gets its calls as sent and its replies are their responses",
          "[actors][rules]") {
  actor_fixture f;
  auto root_log = std::make_shared<call_log>();
  auto virtual_log = std::make_shared<call_log>();
  auto opts = logless();
  opts.root_handler = recording_handler(root_log, "root");
  opts.acceptor = [virtual_log](connection_id, const connection_settings& peer,
                                const vox::metadata&) -> std::variant<accept_connection, reject_connection> {
    accept_connection yes;
    yes.settings = {opposite(peer.parity), 64};
    yes.handler = recording_handler(virtual_log, "virtual");
    return yes;
  };
  // The session is the acceptor (Even); the test calls it as the Odd side.
  auto peer = make_raw_peer(f, session_role::acceptor, opts);
  peer.send(message{1, connection_open{{parity::odd, 64}, {}}});
  auto accepted = peer.recv_as<connection_accept>();
  REQUIRE(accepted);
  REQUIRE(accepted->first == 1);

  vox::metadata md{{"trace-id", std::string{"abc123"}, 0}, {"attempt", uint64_t{2}, 0}};
  peer.send(call_message(0, 1, 0x1111, payload{byte_buffer{1, 2, 3}}, md));
  peer.send(call_message(1, 1, 0x2222, payload{byte_buffer{9}}));
  std::map<connection_id, seen_response> responses;
  for (int i = 0; i < 2; ++i) {
    auto r = next_response(peer);
    REQUIRE(r);
    responses[r->connection] = std::move(*r);
  }
  REQUIRE(responses.count(0) == 1);
  REQUIRE(responses.count(1) == 1);
  // Each reply went back as the response to its own request, on its own connection.
  CHECK(responses[0].id == 1);
  CHECK(to_hex(responses[0].response.ret) == "00010203");
  CHECK(responses[0].response.metadata == vox::metadata{{"handled-by", std::string{"root"}, 0}});
  CHECK(responses[1].id == 1);
  CHECK(to_hex(responses[1].response.ret) == "0009");
  CHECK(responses[1].response.metadata == vox::metadata{{"handled-by", std::string{"virtual"}, 0}});

  // Each handler saw exactly the calls of its connection, with what the caller sent.
  auto root_calls = root_log->snapshot();
  REQUIRE(root_calls.size() == 1);
  CHECK(root_calls[0].connection == 0);
  CHECK(root_calls[0].id == 1);
  CHECK(root_calls[0].method == 0x1111);
  CHECK(root_calls[0].metadata == md);
  CHECK(to_hex(root_calls[0].args) == "010203");
  auto virtual_calls = virtual_log->snapshot();
  REQUIRE(virtual_calls.size() == 1);
  CHECK(virtual_calls[0].connection == 1);
  CHECK(virtual_calls[0].id == 1);
  CHECK(virtual_calls[0].method == 0x2222);
  CHECK(virtual_calls[0].metadata.empty());
  CHECK(to_hex(virtual_calls[0].args) == "09");

  // A handler that fails without answering costs the caller that call only (Cancelled);
  // the next call on the connection is handled as usual.
  peer.send(call_message(0, 3, throwing_method, payload{}));
  auto failed = next_response(peer);
  REQUIRE(failed);
  CHECK(failed->id == 3);
  CHECK(to_hex(failed->response.ret) == "0103"); // Err(VoxError::Cancelled)
  peer.send(call_message(0, 5, 0x1111, payload{byte_buffer{4}}));
  auto after = next_response(peer);
  REQUIRE(after);
  CHECK(after->id == 5);
  CHECK(to_hex(after->response.ret) == "0004");
  CHECK(root_log->snapshot().size() == 3);
}

// r[verify rpc.response.one-per-request]
TEST_CASE("a cancelled request gets one response even when its handler answers or gives up later",
          "[actors][rules]") {
  actor_fixture f;
  auto sinks = std::make_shared<sink_queue>();
  auto opts = logless();
  opts.root_handler = [sinks](incoming_call, reply_sink sink) { sinks->push(std::move(sink)); };
  auto peer = make_raw_peer(f, session_role::acceptor, opts);

  SECTION("a reply after the Cancel is not sent") {
    peer.send(call_message(0, 1, 5, payload{}));
    peer.send(call_message(0, 3, 5, payload{}));
    auto s1 = sinks->pop();
    auto s3 = sinks->pop();
    REQUIRE(s1);
    REQUIRE(s3);
    REQUIRE(s1->id() == 1);
    REQUIRE(s3->id() == 3);
    peer.send(message{0, request_message{1, request_cancel{}}});
    auto cancelled = next_response(peer);
    REQUIRE(cancelled);
    CHECK(cancelled->id == 1);
    CHECK(to_hex(cancelled->response.ret) == "0103"); // Err(VoxError::Cancelled)
    // Request 1 is answered. Its handler's late reply reaches the connection before the
    // reply to request 3 (both go from this thread to the same actor, in this order), so
    // the next Response on the wire shows whether request 1 got a second one.
    s1->reply(payload{byte_buffer{0x00, 0x2a}});
    s3->reply(payload{byte_buffer{0x00, 0x07}});
    auto next = next_response(peer);
    REQUIRE(next);
    CHECK(next->id == 3);
    CHECK(to_hex(next->response.ret) == "0007");
  }

  SECTION("a sink dropped after the Cancel sends no second Cancelled") {
    peer.send(call_message(0, 5, 5, payload{}));
    peer.send(call_message(0, 7, 5, payload{}));
    auto s5 = sinks->pop();
    auto s7 = sinks->pop();
    REQUIRE(s5);
    REQUIRE(s7);
    REQUIRE(s5->id() == 5);
    REQUIRE(s7->id() == 7);
    peer.send(message{0, request_message{5, request_cancel{}}});
    auto cancelled = next_response(peer);
    REQUIRE(cancelled);
    CHECK(cancelled->id == 5);
    CHECK(to_hex(cancelled->response.ret) == "0103");
    s5.reset(); // the last copy: it answers Cancelled on its own, which must be dropped
    s7->reply(payload{byte_buffer{0x00, 0x09}});
    auto next = next_response(peer);
    REQUIRE(next);
    CHECK(next->id == 7);
    CHECK(to_hex(next->response.ret) == "0009");
  }

  // Nothing else is on its way: the session answers a Ping before anything else.
  peer.send(message{0, ping{11}});
  auto m = peer.recv();
  REQUIRE(m);
  REQUIRE(std::holds_alternative<pong>(m->payload));
  CHECK(std::get<pong>(m->payload).nonce == 11);
}

// r[verify rpc.caller.liveness]
TEST_CASE("without root callers the session ends exactly when its last virtual connection closes",
          "[actors][rules]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  auto [first, c1] = open_accepted(f, peer);
  REQUIRE(c1);
  auto [second, c2] = open_accepted(f, peer);
  REQUIRE(c2);

  { caller root{peer.session.root}; } // the last root caller is gone
  // The drop and this request reach the session's mailbox from this thread in this order,
  // so the answer comes after the drop was handled: the session is still there.
  auto info = f.info(peer.session.actor);
  CHECK(info.root_closed);
  CHECK(info.active_connections == 3);
  // Still serving, and no ConnectionClose for the root came before the Pong.
  peer.send(message{0, ping{1}});
  auto m = peer.recv();
  REQUIRE(m);
  CHECK(m->connection_id == 0);
  CHECK(std::holds_alternative<pong>(m->payload));

  // One virtual connection closes: one is left, the session stays.
  peer.send(message{first, connection_close{}});
  peer.send(message{0, ping{2}});
  m = peer.recv();
  REQUIRE(m);
  REQUIRE(std::holds_alternative<pong>(m->payload));
  CHECK(std::get<pong>(m->payload).nonce == 2);

  // The last one closes: the session ends, normally, and closes its side of the link.
  peer.send(message{second, connection_close{}});
  auto reason = f.wait_down(peer.session.actor);
  REQUIRE(reason);
  CHECK_FALSE(*reason);
  CHECK(peer.sees_eof());
}

// r[verify rpc.channel.binding]
TEST_CASE("a caller's Tx and Rx arguments are bound to channel ids of its connection's parity",
          "[actors][rules][channels]") {
  SECTION("root of an initiator session: Odd") {
    actor_fixture f;
    auto peer = make_raw_peer(f, session_role::initiator, logless());
    check_channel_binding(f, peer, caller{peer.session.root}, 0, 1);
  }
  SECTION("root of an acceptor session: Even") {
    actor_fixture f;
    auto peer = make_raw_peer(f, session_role::acceptor, logless());
    check_channel_binding(f, peer, caller{peer.session.root}, 0, 2);
  }
  SECTION("a virtual connection opened as Even by an Odd session: Even") {
    actor_fixture f;
    auto peer = make_raw_peer(f, session_role::initiator, logless());
    auto opened = f.async([&](caf::scoped_actor& a) {
      return actor_fixture::open_with(a, peer.session.actor, {parity::even, 64});
    });
    auto open = peer.recv_as<connection_open>();
    REQUIRE(open);
    CHECK(open->first % 2 == 1); // the connection id follows the session's parity
    CHECK(open->second.connection_settings.parity == parity::even);
    peer.send(message{open->first, connection_accept{{parity::odd, 64}, {}}});
    auto conn = opened.get();
    REQUIRE(conn);
    check_channel_binding(f, peer, caller{*conn}, open->first, 2);
  }
}

// r[verify rpc.channel.payload-encoding]
TEST_CASE("channel arguments are their id varints described as channel schemas, items are postcard",
          "[actors][rules][channels]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  client<streams> cl{caller{peer.session.root}};
  auto [text_out, text_in] = channel<std::string>();
  auto [num_out, num_in] = channel<int32_t>();
  auto done = f.async([cl, text_in = text_in, num_out = num_out](caf::scoped_actor& a) {
    return cl.call<mixed>(a, {300, text_in, num_out, "end"}, wait_bound);
  });
  auto call = next_call(peer);
  REQUIRE(call);

  // args = (u32 300, Rx<String>, Tx<i32>, String "end"): 300 as varint ac 02, then the two
  // channel ids 1 and 3 as varints (not unit placeholders), then the string.
  CHECK(to_hex(call->call.args) == "ac020103" "03656e64");

  // The first call's schemas describe the arguments: a 4-tuple whose 2nd and 3rd elements
  // are the reference's generic Rx<T> and Tx<T> channel schemas, applied to String and i32.
  REQUIRE_FALSE(call->call.schemas.empty());
  auto sp = schema::decode_schema_payload(call->call.schemas);
  REQUIRE(sp);
  CHECK(hex_id(sp->root.type_id) == hex_id(tuple4_schema_id));
  REQUIRE(sp->root.args.size() == 4);
  CHECK(hex_id(sp->root.args[0].type_id) == hex_id(u32_schema_id));
  CHECK(hex_id(sp->root.args[3].type_id) == hex_id(string_schema_id));
  struct expected_channel {
    size_t position;
    uint64_t id;
    const char* direction;
    uint64_t element;
  };
  for (auto want : {expected_channel{1, rx_schema_id, "rx", string_schema_id},
                    expected_channel{2, tx_schema_id, "tx", i32_schema_id}}) {
    INFO("argument " << want.position << " (" << want.direction << ")");
    const auto& ref = sp->root.args[want.position];
    CHECK(hex_id(ref.type_id) == hex_id(want.id));
    REQUIRE(ref.args.size() == 1);
    CHECK(hex_id(ref.args[0].type_id) == hex_id(want.element));
    auto* s = find_schema(*sp, ref.type_id);
    REQUIRE(s);
    CHECK(s->kind.kind == schema::schema_kind::tag::channel);
    CHECK(s->kind.direction == want.direction);
    CHECK(s->type_params == std::vector<std::string>{"T"});
    CHECK(s->kind.elements == std::vector<schema::type_ref>{schema::type_ref::var("T")});
    CHECK(hex_id(schema::content_hash(s->kind, s->type_params)) == hex_id(s->id));
    CHECK(find_schema(*sp, want.element) != nullptr);
  }

  // Items are postcard values of the element type: String "hello" = 05 68656c6c6f from the
  // caller on channel 1; i32 -2 = zigzag 03 from the peer on channel 3.
  REQUIRE(text_out.send_for("hello", wait_bound));
  auto item = next_channel_message(peer);
  REQUIRE(item);
  CHECK(item->second.id == 1);
  REQUIRE(std::holds_alternative<channel_item>(item->second.body));
  CHECK(to_hex(std::get<channel_item>(item->second.body).item) == "0568656c6c6f");
  peer.send(message{0, channel_message{3, channel_item{payload{byte_buffer{0x03}}}}});
  auto got = num_in.recv_for(wait_bound);
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == -2);

  text_out.close();
  auto closed = next_channel_message(peer);
  REQUIRE(closed);
  CHECK(closed->second.id == 1);
  CHECK(std::holds_alternative<channel_close>(closed->second.body));
  peer.send(message{0, channel_message{3, channel_close{}}});
  peer.send(ok_response<mixed>(0, call->id, unit{}));
  REQUIRE(done.get());
}
