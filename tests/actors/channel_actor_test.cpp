// Channel ends in event-based actors at both ends: no scoped_actor, no blocking call, no
// thread per call. Order, credit, Close/Reset and connection loss, over memory and TCP.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>

#include <caf/event_based_actor.hpp>

#include "actors/channel.hpp"
#include "actors/service.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using generate = method<"generate", void(uint32_t, tx<int32_t>)>;
/// Counts items, or -1 if one came out of order.
using count_in_order = method<"count_in_order", int64_t(rx<int32_t>)>;
/// Sends `n` items, then resets the channel.
using generate_then_reset = method<"generate_then_reset", void(uint32_t, tx<int32_t>)>;
/// Sends until the receiver resets; true once the reset reached the sender.
using until_reset = method<"until_reset", bool(tx<int32_t>)>;
/// Each side waits for items the other never sends.
using stall = method<"stall", void(rx<int32_t>, tx<int32_t>)>;
using actor_streams = service<"ActorStreams", generate, count_in_order, generate_then_reset, until_reset, stall>;

constexpr auto long_bound = std::chrono::seconds{60}; // 100,000 items under ASan

/// Yields 0, 1, 2, … up to `n` (exclusive), counting into `produced`.
auto counting(uint32_t n, std::shared_ptr<std::atomic<uint64_t>> produced = nullptr) {
  return [i = uint32_t{0}, n, produced]() mutable -> std::optional<int32_t> {
    if (i == n)
      return std::nullopt;
    if (produced)
      produced->fetch_add(1);
    return static_cast<int32_t>(i++);
  };
}

struct hooks {
  /// Counted by the server's `generate` as it produces items.
  std::shared_ptr<std::atomic<uint64_t>> produced = std::make_shared<std::atomic<uint64_t>>(0);
  /// How `until_reset`'s send loop ended.
  std::shared_ptr<std::promise<caf::error>> sender_end = std::make_shared<std::promise<caf::error>>();
};

call_handler streams_handler(hooks h) {
  service_dispatcher<actor_streams> d;
  d.on<generate>([h](caf::event_based_actor* self, uint32_t n, tx<int32_t> out, responder<actor_streams, generate> r) {
    out.send_all(self, counting(n, h.produced), [r](const caf::error&) { r.ok({}); });
  });
  d.on<count_in_order>([](caf::event_based_actor* self, rx<int32_t> in, responder<actor_streams, count_in_order> r) {
    auto next = std::make_shared<int64_t>(0);
    in.for_each(
      self,
      [next](int32_t v) {
        if (*next >= 0)
          *next = v == *next ? *next + 1 : -1;
      },
      [next, r](const caf::error& err) { r.ok(err ? -2 : *next); });
  });
  d.on<generate_then_reset>(
    [](caf::event_based_actor* self, uint32_t n, tx<int32_t> out, responder<actor_streams, generate_then_reset> r) {
      auto sent = std::make_shared<uint32_t>(0);
      auto step = std::make_shared<std::function<void()>>();
      *step = [=] {
        while (*sent < n && out.try_send(static_cast<int32_t>(*sent)))
          ++*sent;
        if (*sent < n) {
          out.when_ready(self, [step](const caf::error& err) {
            if (!err)
              (*step)();
          });
          return;
        }
        out.reset();
        r.ok({});
        *step = nullptr;
      };
      (*step)();
    });
  d.on<until_reset>([h](caf::event_based_actor* self, tx<int32_t> out, responder<actor_streams, until_reset> r) {
    out.send_all(self, counting(UINT32_MAX), [h, r](const caf::error& err) {
      h.sender_end->set_value(err);
      r.ok(static_cast<bool>(err));
    });
  });
  return d.handler();
}

struct actor_pair {
  actor_fixture f;
  hooks h;
  session_pair pair;
  caller root; ///< keeps the session open (the actors' copies go when their init is done)
  explicit actor_pair(const std::string& kind) {
    auto server = logless();
    server.root_handler = streams_handler(h);
    pair = make_session_pair(f, link_pair(kind), logless(), server);
    root = caller{pair.client.root};
  }
  client<actor_streams> api() { return client<actor_streams>{root}; }
};

/// What a client-side consumer saw.
struct consumed {
  int64_t in_order = 0; ///< items in order, or -1 after one out of order
  caf::error end;       ///< on_end's error (none after Close)
  bool call_ok = false;
};

/// Calls generate(n) from an event-based actor and consumes its items there.
std::future<consumed> consume_generate(actor_fixture& f, client<actor_streams> api, uint32_t n) {
  auto done = std::make_shared<std::promise<consumed>>();
  auto fut = done->get_future();
  f.sys.spawn(
    [api](caf::event_based_actor* self, uint32_t n, std::shared_ptr<std::promise<consumed>> done) {
      auto [out, in] = channel<int32_t>();
      auto st = std::make_shared<consumed>();
      auto pending = std::make_shared<int>(2); // the Response and the channel's end
      auto finish = [st, pending, done] {
        if (--*pending == 0)
          done->set_value(*st);
      };
      api.request<generate>(self, {n, out}, [st, finish](caf::expected<generate::result_type> r) {
        st->call_ok = r && r->is_ok();
        finish();
      });
      in.for_each(
        self,
        [st](int32_t v) {
          if (st->in_order >= 0)
            st->in_order = v == st->in_order ? st->in_order + 1 : -1;
        },
        [st, finish](const caf::error& err) {
          st->end = err;
          finish();
        });
    },
    n, done);
  return fut;
}

} // namespace

// r[verify rpc.flow-control.credit.exhaustion]
TEST_CASE("100,000 items with credit 16 arrive in order between event-based actors, both ways",
          "[actors][channels][event]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_pair p{kind};
  constexpr uint32_t n = 100000;
  // Server actor produces, client actor consumes.
  auto got = consume_generate(p.f, p.api(), n);
  REQUIRE(got.wait_for(long_bound) == std::future_status::ready);
  auto c = got.get();
  CHECK(c.call_ok);
  CHECK_FALSE(c.end);
  CHECK(c.in_order == n);
  // Client actor produces, server actor consumes.
  std::promise<int64_t> counted;
  p.f.sys.spawn(
    [api = p.api()](caf::event_based_actor* self, std::promise<int64_t>* result) {
      auto [out, in] = channel<int32_t>();
      api.request<count_in_order>(self, {in}, [result](caf::expected<count_in_order::result_type> r) {
        result->set_value(r && r->is_ok() ? r->ok() : -3);
      });
      out.send_all(self, counting(n), [](const caf::error&) {});
    },
    &counted);
  auto f2 = counted.get_future();
  REQUIRE(f2.wait_for(long_bound) == std::future_status::ready);
  CHECK(f2.get() == n);
}

TEST_CASE("a slow consumer actor holds its producer to the credit: never more than 2N items ahead",
          "[actors][channels][event]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_pair p{kind};
  constexpr uint32_t n = 400;
  constexpr uint64_t credit = default_channel_credit;
  auto consumed_count = std::make_shared<std::atomic<uint64_t>>(0);
  auto max_ahead = std::make_shared<std::atomic<uint64_t>>(0);
  std::promise<bool> done;
  // The consumer takes one item per tick, a tick every 200 µs: far slower than the
  // producer, which can only run ahead as far as the credit lets it.
  p.f.sys.spawn(
    [api = p.api(), produced = p.h.produced, consumed_count, max_ahead, n](caf::event_based_actor* self,
                                                                          std::promise<bool>* result) -> caf::behavior {
      auto [out, in] = channel<int32_t>();
      api.request<generate>(self, {n, out}, [](caf::expected<generate::result_type>) {});
      auto take = [=] {
        in.next(self, [=](caf::expected<std::optional<int32_t>> item) {
          auto ahead = produced->load() - consumed_count->load();
          if (ahead > max_ahead->load())
            max_ahead->store(ahead);
          if (!item || !*item) {
            result->set_value(static_cast<bool>(item));
            self->quit();
            return;
          }
          consumed_count->fetch_add(1);
          self->delayed_send(self, std::chrono::microseconds{200}, caf::tick_atom::value);
        });
      };
      take();
      return {[take](caf::tick_atom) { take(); }};
    },
    &done);
  auto f = done.get_future();
  REQUIRE(f.wait_for(long_bound) == std::future_status::ready);
  CHECK(f.get());
  CHECK(consumed_count->load() == n);
  // The producer did run ahead (the test means something) but never past the credit
  // plus the one batch the consumer's end holds.
  CHECK(max_ahead->load() >= credit / 2);
  CHECK(max_ahead->load() <= 2 * credit);
}

// r[verify rpc.channel.reset]
TEST_CASE("a Reset reaches the actor at the other end, whichever end sends it", "[actors][channels][event]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_pair p{kind};
  // The sender resets after 20 items: the consumer actor sees them, then the reset.
  auto api = p.api();
  std::promise<std::pair<int, caf::error>> seen;
  p.f.sys.spawn(
    [api](caf::event_based_actor* self, std::promise<std::pair<int, caf::error>>* result) {
      auto [out, in] = channel<int32_t>();
      api.request<generate_then_reset>(self, {20, out}, [](caf::expected<generate_then_reset::result_type>) {});
      auto count = std::make_shared<int>(0);
      in.for_each(self, [count](int32_t) { ++*count; }, [count, result](const caf::error& err) {
        result->set_value({*count, err});
      });
    },
    &seen);
  auto f = seen.get_future();
  REQUIRE(f.wait_for(wait_bound) == std::future_status::ready);
  auto [count, err] = f.get();
  CHECK(count == 20);
  CHECK(is(err, errc::closed));
  // The receiver resets after 5 items: the endless sender's loop ends with the reset.
  std::promise<bool> answered;
  p.f.sys.spawn(
    [api](caf::event_based_actor* self, std::promise<bool>* result) {
      auto [out, in] = channel<int32_t>();
      api.request<until_reset>(self, {out}, [result](caf::expected<until_reset::result_type> r) {
        result->set_value(r && r->is_ok() && r->ok());
      });
      auto count = std::make_shared<int>(0);
      in.for_each(self, [count, in = in](int32_t) {
        if (++*count == 5)
          in.reset();
      }, [](const caf::error&) {});
    },
    &answered);
  auto sender = p.h.sender_end->get_future();
  REQUIRE(sender.wait_for(wait_bound) == std::future_status::ready);
  CHECK(is(sender.get(), errc::closed));
  auto a = answered.get_future();
  REQUIRE(a.wait_for(wait_bound) == std::future_status::ready);
  CHECK(a.get());
}

TEST_CASE("closing a connection fails the channel ends of the actors at both ends", "[actors][channels][event]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  // The server's actor waits for items that never come, holding its sending end.
  auto server_end = std::make_shared<std::promise<caf::error>>();
  auto server_started = std::make_shared<std::promise<void>>();
  service_dispatcher<actor_streams> d;
  d.on<stall>([server_end, server_started](caf::event_based_actor* self, rx<int32_t> in, tx<int32_t> out,
                                           responder<actor_streams, stall>) {
    server_started->set_value();
    in.for_each(self, [](int32_t) {}, [server_end, out](const caf::error& err) { server_end->set_value(err); });
  });
  auto server = logless();
  auto handler = d.handler();
  server.acceptor = [handler](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, handler, {}};
  };
  auto pair = make_session_pair(f, link_pair(kind), logless(), server);
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  caller root{pair.client.root};
  caller keep{*conn}; // the connection closes when we say so, not when a caller goes
  // So does the client's actor.
  std::promise<caf::error> client_end;
  f.sys.spawn(
    [api = client<actor_streams>{caller{*conn}}](caf::event_based_actor* self,
                                                 std::promise<caf::error>* result) {
      auto [ours_out, theirs_in] = channel<int32_t>();
      auto [theirs_out, ours_in] = channel<int32_t>();
      api.request<stall>(self, {theirs_in, theirs_out}, [](caf::expected<stall::result_type>) {});
      ours_in.for_each(self, [](int32_t) {}, [result, keep = ours_out](const caf::error& err) {
        result->set_value(err);
      });
    },
    &client_end);
  // Close only once the call reached the server (the Close must not overtake the Call).
  REQUIRE(server_started->get_future().wait_for(wait_bound) == std::future_status::ready);
  REQUIRE_FALSE(f.close(pair.client.actor, conn->id));
  auto c = client_end.get_future();
  REQUIRE(c.wait_for(wait_bound) == std::future_status::ready);
  CHECK(is(c.get(), errc::connection_closed));
  auto s = server_end->get_future();
  REQUIRE(s.wait_for(wait_bound) == std::future_status::ready);
  CHECK(is(s.get(), errc::connection_closed));
}
