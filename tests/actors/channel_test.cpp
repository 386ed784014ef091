// Channels with credit (testbed-service.md §1, §3): ids, binding, flow control, Close/Reset.
#include <catch2/catch.hpp>

#include "actors/channel.hpp"
#include "actors/service.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using sum = method<"sum", int64_t(rx<int32_t>)>;
using generate = method<"generate", void(uint32_t, tx<int32_t>)>;
using transform = method<"transform", void(rx<std::string>, tx<std::string>)>;
// Declared with a window of 4 instead of the default 16.
using sum_small = method<"sum_small", int64_t(rx<int32_t, 4>)>;
using keep = method<"keep", void(rx<int32_t, 4>)>;
using streams = service<"Testbed", sum, generate, transform, sum_small, keep>;

/// Adds the items of `in` in `self`; answers with what arrived once the channel ends
/// (Close, Reset or a dead connection).
template <class M, class Rx>
void sum_into(caf::event_based_actor* self, const Rx& in, responder<streams, M> r) {
  auto total = std::make_shared<int64_t>(0);
  in.for_each(self, [total](int32_t v) { *total += v; }, [total, r](const caf::error&) { r.ok(*total); });
}

call_handler streams_handler() {
  service_dispatcher<streams> d;
  d.on<sum>([](caf::event_based_actor* self, rx<int32_t> in, responder<streams, sum> r) { sum_into(self, in, r); });
  d.on<sum_small>(
    [](caf::event_based_actor* self, rx<int32_t, 4> in, responder<streams, sum_small> r) { sum_into(self, in, r); });
  // Answers at once and keeps the channel open, never reading it (channels outlive calls).
  auto kept = std::make_shared<std::vector<rx<int32_t, 4>>>();
  d.on<keep>([kept](caf::event_based_actor*, rx<int32_t, 4> in, responder<streams, keep> r) {
    kept->push_back(std::move(in));
    r.ok({});
  });
  d.on<generate>([](caf::event_based_actor* self, uint32_t count, tx<int32_t> out, responder<streams, generate> r) {
    out.send_all(
      self,
      [i = uint32_t{0}, count]() mutable -> std::optional<int32_t> {
        if (i == count)
          return std::nullopt;
        return static_cast<int32_t>(i++);
      },
      [r](const caf::error&) { r.ok({}); }); // Close goes on the wire before the Response
  });
  d.on<transform>([](caf::event_based_actor* self, rx<std::string> in, tx<std::string> out,
                     responder<streams, transform> r) {
    // Each item is echoed once the output has credit; the input is read no faster.
    auto step = std::make_shared<std::function<void()>>();
    *step = [self, in, out, r, step] {
      in.next(self, [self, out, r, step](caf::expected<std::optional<std::string>> item) {
        if (!item || !*item) {
          out.close();
          r.ok({});
          *step = nullptr; // breaks the cycle
          return;
        }
        out.when_ready(self, [out, step, s = **item](const caf::error& err) {
          if (!err)
            out.try_send(s);
          (*step)();
        });
      });
    };
    (*step)();
  });
  return d.handler();
}

struct streams_pair {
  actor_fixture f;
  session_pair pair;
  explicit streams_pair(const std::string& kind) {
    auto server = logless();
    server.root_handler = streams_handler();
    pair = make_session_pair(f, link_pair(kind), logless(), server);
  }
};

} // namespace

TEST_CASE("Tx and Rx have the reference's schema ids and method ids", "[actors][channels]") {
  CHECK(schema::schema_payload_of<tx<int32_t>>().root.type_id == 0xc886545a493d06ebull);
  CHECK(schema::schema_payload_of<rx<int32_t>>().root.type_id == 0x967a48ac345e2f5eull);
  CHECK(streams::id<sum>() == 0x51f9cfd8e86577c9ull);
  CHECK(streams::id<generate>() == 0x239e5b99b1f8207aull);
  CHECK(streams::id<transform>() == 0xcb469cff8d798feb);
}

// r[verify rpc.channel.item]
// r[verify rpc.channel.close]
TEST_CASE("items sent on a caller's channel reach the handler until Close", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  streams_pair s{kind};
  client<streams> c{caller{s.pair.client.root}};
  auto [out, in] = channel<int32_t>();
  auto result = s.f.async([&, in = in](caf::scoped_actor& a) { return c.call<sum>(a, {in}, wait_bound); });
  for (int32_t i = 1; i <= 5; ++i)
    REQUIRE(out.send(i));
  out.close();
  auto r = result.get();
  INFO((r ? std::string{"ok"} : describe(r.error())));
  REQUIRE(r);
  CHECK(r->ok() == 15);
}

// r[verify rpc.flow-control.credit.grant]
TEST_CASE("100 items with 16 initial credit arrive in order, in both directions", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  streams_pair s{kind};
  client<streams> c{caller{s.pair.client.root}};
  {
    auto [out, in] = channel<int32_t>();
    auto result = s.f.async([&, in = in](caf::scoped_actor& a) { return c.call<sum>(a, {in}, wait_bound); });
    for (int32_t i = 0; i < 100; ++i)
      REQUIRE(out.send_for(i, wait_bound)); // blocks whenever the 16 credits are spent
    out.close();
    auto r = result.get();
    REQUIRE(r);
    CHECK(r->ok() == 4950);
  }
  {
    auto [out, in] = channel<int32_t>();
    auto result = s.f.async([&, out = out](caf::scoped_actor& a) { return c.call<generate>(a, {100, out}, wait_bound); });
    std::vector<int32_t> want(100);
    std::iota(want.begin(), want.end(), 0);
    CHECK(drain(in) == want);
    REQUIRE(result.get());
  }
}

TEST_CASE("a transform streams both ways at once", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  streams_pair s{kind};
  client<streams> c{caller{s.pair.client.root}};
  auto [in_tx, in_rx] = channel<std::string>();
  auto [out_tx, out_rx] = channel<std::string>();
  auto result = s.f.async([&, a1 = in_rx, a2 = out_tx](caf::scoped_actor& a) {
    return c.call<transform>(a, {a1, a2}, wait_bound);
  });
  std::vector<std::string> got;
  for (auto w : {"alpha", "beta", "gamma"}) {
    REQUIRE(in_tx.send(w));
    auto echo = out_rx.recv_for(wait_bound);
    REQUIRE(echo);
    REQUIRE(*echo);
    got.push_back(**echo);
  }
  in_tx.close();
  auto end = out_rx.recv_for(wait_bound);
  REQUIRE(end);
  CHECK_FALSE(*end);
  CHECK(got == std::vector<std::string>{"alpha", "beta", "gamma"});
  REQUIRE(result.get());
}

// r[verify rpc.flow-control.credit.exhaustion]
TEST_CASE("a sender blocks at zero credit and resumes when credit is granted", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind));
  client<streams> c{caller{peer.session.root}};
  auto [out, in] = channel<int32_t>();
  caf::anon_send(c.get_caller().driver(), call_atom::value, *c.make_call<sum>({in}));
  auto call = peer.recv_as<request_message>();
  REQUIRE(call);
  auto args = std::get<request_call>(call->second.body).args;
  CHECK(args == payload{0x01}); // the channel id, odd: our first channel
  for (int32_t i = 0; i < 16; ++i)
    REQUIRE(out.send(i));
  auto blocked = out.send_for(16, std::chrono::milliseconds{50});
  REQUIRE_FALSE(blocked);
  CHECK(is(blocked.error(), errc::timeout));
  for (int32_t i = 0; i < 16; ++i) {
    auto item = peer.recv_as<channel_message>();
    REQUIRE(item);
    CHECK(item->second.id == 1);
    CHECK(std::get<channel_item>(item->second.body).item == payload{encode(i)});
  }
  peer.send(message{0, channel_message{1, channel_grant_credit{1}}});
  REQUIRE(out.send_for(16, wait_bound));
  auto item = peer.recv_as<channel_message>();
  REQUIRE(item);
  CHECK(std::get<channel_item>(item->second.body).item == payload{encode(int32_t{16})});
}

TEST_CASE("the handler's generate sends items, then Close, then the Response", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::acceptor, serving(streams_handler()), link_pair(kind));
  // Caller is the raw peer (Odd): channel id 1 for the handler's Tx.
  peer.send(message{0, request_message{1, request_call{streams::id<generate>(), {}, payload{0x03, 0x01}, {}}}});
  std::vector<std::string> kinds;
  for (int i = 0; i < 5; ++i) {
    auto m = peer.recv();
    REQUIRE(m);
    if (auto* cm = std::get_if<channel_message>(&m->payload))
      kinds.push_back(std::holds_alternative<channel_item>(cm->body) ? "item" : "close");
    else if (std::holds_alternative<request_message>(m->payload))
      kinds.push_back("response");
  }
  CHECK(kinds == std::vector<std::string>{"item", "item", "item", "close", "response"});
}

// r[verify rpc.channel.reset]
TEST_CASE("a Reset from the peer stops the channel at both ends", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind));
  client<streams> c{caller{peer.session.root}};
  auto [out, in] = channel<int32_t>();
  caf::anon_send(c.get_caller().driver(), call_atom::value, *c.make_call<sum>({in}));
  REQUIRE(peer.recv_as<request_message>());
  peer.send(message{0, channel_message{1, channel_reset{}}});
  // The reset arrives asynchronously: the next sends fail once it has.
  caf::expected<void> sent;
  for (int i = 0; i < 1000 && sent; ++i)
    sent = out.send_for(1, wait_bound);
  REQUIRE_FALSE(sent);
  CHECK(is(sent.error(), errc::closed));
}

TEST_CASE("channel ends fail when their connection closes", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind));
  client<streams> c{caller{peer.session.root}};
  auto [out, in] = channel<int32_t>();
  caf::anon_send(c.get_caller().driver(), call_atom::value, *c.make_call<generate>({5, out}));
  REQUIRE(peer.recv_as<request_message>());
  peer.link->close(); // the session ends, and with it the root connection
  auto r = in.recv_for(wait_bound);
  REQUIRE_FALSE(r);
  CHECK((is(r.error(), errc::session_shutdown) || is(r.error(), errc::connection_closed)));
}

TEST_CASE("a channel end can be used in one call only", "[actors][channels]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless());
  client<streams> c{caller{peer.session.root}};
  auto [out, in] = channel<int32_t>();
  auto first = c.make_call<sum>({in});
  REQUIRE(first);
  CHECK(first->args == payload{0x01});
  auto second = c.make_call<sum>({in});
  REQUIRE_FALSE(second);
  CHECK(is(second.error(), errc::invalid_request));
}

// r[verify rpc.flow-control.credit.exhaustion]
TEST_CASE("a channel declared with credit 4 lets four items out, then waits for a grant", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), link_pair(kind));
  client<streams> c{caller{peer.session.root}};
  auto [out, in] = channel<int32_t, 4>();
  caf::anon_send(c.get_caller().driver(), call_atom::value, *c.make_call<sum_small>({in}));
  REQUIRE(peer.recv_as<request_message>());
  for (int32_t i = 0; i < 4; ++i)
    REQUIRE(out.send(i));
  auto blocked = out.send_for(4, std::chrono::milliseconds{50});
  REQUIRE_FALSE(blocked);
  CHECK(is(blocked.error(), errc::timeout));
  peer.send(message{0, channel_message{1, channel_grant_credit{2}}});
  REQUIRE(out.send_for(4, wait_bound));
  REQUIRE(out.send_for(5, wait_bound));
  CHECK_FALSE(out.send_for(6, std::chrono::milliseconds{50}));
}

// r[verify rpc.flow-control.credit.grant]
TEST_CASE("a receiver declared with credit 4 grants 2 for every 2 items consumed", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::acceptor, serving(streams_handler()), link_pair(kind));
  peer.send(message{0, request_message{1, request_call{streams::id<sum_small>(), {}, payload{0x01}, {}}}});
  for (int32_t i = 0; i < 4; ++i)
    peer.send(message{0, channel_message{1, channel_item{payload{encode(i)}}}});
  for (int grants = 0; grants < 2; ++grants) {
    auto g = peer.recv_as<channel_message>();
    REQUIRE(g);
    CHECK(g->second.id == 1);
    REQUIRE(std::holds_alternative<channel_grant_credit>(g->second.body));
    CHECK(std::get<channel_grant_credit>(g->second.body).additional == 2);
  }
  // The window is full again: four more fit, then Close.
  for (int32_t i = 4; i < 8; ++i)
    peer.send(message{0, channel_message{1, channel_item{payload{encode(i)}}}});
  peer.send(message{0, channel_message{1, channel_close{}}});
  for (;;) {
    auto m = peer.recv();
    REQUIRE(m);
    if (auto* rm = std::get_if<request_message>(&m->payload)) {
      auto ret = decode<sum_small::result_type>(std::get<request_response>(rm->body).ret);
      REQUIRE(ret);
      CHECK(ret->ok() == 28);
      break;
    }
  }
}

TEST_CASE("an item beyond the credit a receiver gave is a protocol violation", "[actors][channels]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::acceptor, serving(streams_handler()), link_pair(kind));
  peer.send(message{0, request_message{1, request_call{streams::id<keep>(), {}, payload{0x01}, {}}}});
  REQUIRE(peer.recv_as<request_message>()); // answered; the channel stays open, unread
  for (int32_t i = 0; i < 5; ++i)
    peer.send(message{0, channel_message{1, channel_item{payload{encode(i)}}}});
  auto err = peer.recv_as<protocol_error>();
  REQUIRE(err);
  CHECK(err->second.description.find("without credit") != std::string::npos);
  CHECK(peer.sees_eof());
}

TEST_CASE("cancelling a call queued behind the peer's limit fails its channel ends at once", "[actors][channels]") {
  actor_fixture f;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), make_memory_link_pair(), request_limits{64, 1});
  client<streams> c{caller{peer.session.root}};
  // The first call takes the peer's only slot and is never answered.
  auto [first_out, first_in] = channel<int32_t>();
  caf::anon_send(c.get_caller().driver(), call_atom::value, *c.make_call<sum>({first_in}));
  REQUIRE(peer.recv_as<request_message>());
  // The second waits behind it and is cancelled there: it never reaches the peer.
  auto [out, in] = channel<int32_t>();
  call_options opts;
  opts.cancel_tag = new_cancel_tag();
  auto call = c.make_call<sum>({in}, opts);
  REQUIRE(call);
  caf::error result;
  auto pending = f.self->request(c.get_caller().driver(), wait_bound, call_atom::value, std::move(*call));
  f.self->send(c.get_caller().driver(), cancel_atom::value, opts.cancel_tag); // after the call: same sender
  pending.receive([](call_response&) {}, [&](caf::error& e) { result = std::move(e); });
  CHECK(is(result, errc::cancelled));
  // Its sending end fails now, with the call's reason, instead of waiting for credit.
  auto sent = out.send_for(1, wait_bound);
  REQUIRE_FALSE(sent);
  CHECK(is(sent.error(), errc::cancelled));
}
