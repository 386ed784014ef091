// A session fed seeded random Messages (well-formed frames, arbitrary contents): whatever
// the peer sends, the session answers with decodable Messages and either stays up or ends
// cleanly, and nothing crashes (the suite also runs under ASan+UBSan).
#include <catch2/catch.hpp>

#include <random>

#include "actors/channel.hpp"
#include "actors/service.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using echo = method<"echo", std::string(std::string)>;
using sum = method<"sum", int64_t(rx<int32_t>)>;
using generate = method<"generate", void(uint32_t, tx<int32_t>)>;
using fuzzed = service<"Testbed", echo, sum, generate>;

call_handler fuzzed_handler() {
  service_dispatcher<fuzzed> d;
  d.on<echo>([](std::string s, responder<fuzzed, echo> r) { r.ok(std::move(s)); });
  d.on<sum>([](caf::event_based_actor* self, rx<int32_t> in, responder<fuzzed, sum> r) {
    auto total = std::make_shared<int64_t>(0);
    in.for_each(self, [total](int32_t v) { *total += v; }, [total, r](const caf::error&) { r.ok(*total); });
  });
  d.on<generate>([](caf::event_based_actor* self, uint32_t n, tx<int32_t> out, responder<fuzzed, generate> r) {
    // Bounded: random GrantCredits must not turn this into an endless stream.
    out.send_all(
      self,
      [i = uint32_t{0}, n = std::min<uint32_t>(n, 100)]() mutable -> std::optional<int32_t> {
        if (i == n)
          return std::nullopt;
        return static_cast<int32_t>(i++);
      },
      [r](const caf::error&) { r.ok({}); });
  });
  return d.handler();
}

/// Small ids so that random messages hit live connections, requests and channels.
class message_source {
public:
  explicit message_source(uint32_t seed) : rng_(seed) {}

  message next() {
    auto id = [&] { return static_cast<uint64_t>(pick(7)); };
    auto md = [&] {
      metadata out;
      for (int i = pick(3); i > 0; --i)
        out.push_back({"k" + std::to_string(pick(3)), uint64_t{pick(1000)}, uint64_t{pick(4)}});
      return out;
    };
    auto connection = pick(4) == 0 ? id() : 0; // mostly the root
    switch (pick(9)) {
      case 0: return message{connection, connection_open{{pick(2) ? parity::odd : parity::even, pick(3)}, md()}};
      case 1: return message{connection, connection_accept{{parity::odd, 64}, md()}};
      case 2: return message{connection, connection_reject{md()}};
      case 3: return message{connection, connection_close{md()}};
      case 4: return message{connection, request_message{id(), call_body(md())}};
      case 5: return message{connection, request_message{id(), request_response{md(), bytes_payload(), {}}}};
      case 6: return message{connection, request_message{id(), request_cancel{}}};
      case 7: return message{connection, channel_message{id(), channel_body_of()}};
      default: return message{connection, ping{uint64_t{pick(1000)}}};
    }
  }

private:
  uint32_t pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>{0, n - 1}(rng_); }

  payload bytes_payload() {
    payload p;
    for (int i = pick(6); i > 0; --i)
      p.push_back(static_cast<uint8_t>(pick(256)));
    return p;
  }

  request_body call_body(metadata md) {
    // Real method ids with random or plausible arguments, or an unknown id.
    method_id_t ids[] = {fuzzed::id<echo>(), fuzzed::id<sum>(), fuzzed::id<generate>(), 12345};
    auto method = ids[pick(4)];
    payload args = bytes_payload();
    if (pick(2) == 0) // a plausible argument tuple: a channel id, or a count and a channel id
      args = method == fuzzed::id<generate>() ? payload{static_cast<uint8_t>(pick(20)), static_cast<uint8_t>(pick(7))}
                                              : payload{static_cast<uint8_t>(pick(7))};
    return request_call{method, std::move(md), std::move(args), {}};
  }

  channel_body channel_body_of() {
    switch (pick(4)) {
      case 0: return channel_item{payload{encode(static_cast<int32_t>(pick(100)))}};
      case 1: return channel_close{};
      case 2: return channel_reset{};
      default: return channel_grant_credit{pick(40)};
    }
  }

  std::mt19937 rng_;
};

} // namespace

TEST_CASE("a session fed random messages answers with valid Messages and never crashes", "[actors][fuzz]") {
  auto seed = GENERATE(range(1u, 17u));
  INFO("seed " << seed);
  actor_fixture f;
  auto opts = logless();
  opts.root_handler = fuzzed_handler();
  opts.acceptor = [](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, fuzzed_handler(), {}};
  };
  auto peer = make_raw_peer(f, session_role::acceptor, opts);
  message_source source{seed};
  // Everything the session writes is drained (and must decode) while we send. The last
  // thing we send is a Ping with a nonce the random ones never use: the session has either
  // answered it (it is up) or ended (say, with a ProtocolError for too many concurrent
  // calls). Both are fine; a hang or a crash is not.
  constexpr uint64_t last_nonce = 1'000'000;
  std::atomic<bool> bad_frame{false};
  std::promise<bool> settled; // true: Pong seen; false: end of stream first
  std::promise<void> eof;
  std::thread reader{[&] {
    bool answered = false;
    for (;;) {
      auto frame = peer.link->recv();
      if (!frame || !*frame)
        break;
      auto m = decode_message(**frame);
      if (!m) {
        bad_frame = true;
        continue;
      }
      if (auto* p = std::get_if<pong>(&m->payload); p != nullptr && p->nonce == last_nonce && !answered) {
        answered = true;
        settled.set_value(true);
      }
    }
    if (!answered)
      settled.set_value(false);
    eof.set_value();
  }};
  for (int i = 0; i < 3000; ++i)
    peer.send(source.next());
  peer.send(message{0, ping{last_nonce}});
  auto outcome = settled.get_future();
  REQUIRE(outcome.wait_for(wait_bound) == std::future_status::ready);
  caf::anon_send(peer.session.actor, stop_atom::value);
  auto done = eof.get_future();
  CHECK(done.wait_for(wait_bound) == std::future_status::ready); // the session closed the link
  peer.link->abort();
  reader.join();
  CHECK_FALSE(bad_frame);
}
