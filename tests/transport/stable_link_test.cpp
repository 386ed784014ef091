// The stable conduit as a link (session-behaviours.md §3.10, ST tests): the test plays the
// peer on the raw link, frame by frame.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "protocol/error.hpp"
#include "support/transport_helpers.hpp"
#include "transport/memory_link.hpp"
#include "transport/stable_hello.hpp"
#include "transport/stable_link.hpp"

using namespace vox;
using namespace std::chrono_literals;

namespace {

constexpr auto bound = 5s;

byte_span text(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

/// What the session above would get: items in order, and the end.
struct collecting_receiver final : link_receiver {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> items;
  std::optional<caf::error> ended;

  void on_frame(byte_span p, caf::execution_unit*) override {
    {
      std::lock_guard<std::mutex> guard{mtx};
      items.emplace_back(p.begin(), p.end());
    }
    cv.notify_all();
  }
  void on_end(caf::error reason, caf::execution_unit*) override {
    {
      std::lock_guard<std::mutex> guard{mtx};
      ended = std::move(reason);
    }
    cv.notify_all();
  }
  bool wait_items(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, bound, [&] { return items.size() >= n; });
  }
  std::optional<caf::error> wait_end() {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait_for(guard, bound, [&] { return ended.has_value(); });
    return ended;
  }
};

void send_frame(const link_ptr& raw, uint32_t seq, std::optional<uint32_t> ack, const std::string& item) {
  byte_buffer out;
  stable::encode_frame(out, {seq, ack}, text(item));
  REQUIRE(raw->send(out));
}

struct seen_frame {
  uint32_t seq;
  std::optional<uint32_t> ack;
  std::string item;
};

seen_frame next_frame(const link_ptr& raw) {
  auto got = raw->recv();
  REQUIRE(got);
  REQUIRE(*got);
  auto f = stable::decode_frame(**got);
  REQUIRE(f);
  return {f->header.seq, f->header.ack, std::string(f->item.begin(), f->item.end())};
}

/// A stable link over one end of a memory pair, started, with the test on the other end.
/// A lost transport is recorded instead of ending the input (the owner would reconnect).
struct stable_fixture {
  std::shared_ptr<stable_link> link;
  link_ptr peer;
  std::shared_ptr<collecting_receiver> up = std::make_shared<collecting_receiver>();
  std::shared_ptr<collecting_receiver> losses = std::make_shared<collecting_receiver>();

  explicit stable_fixture(stable_options opts = {}) {
    auto [ours, theirs] = make_memory_link_pair();
    peer = theirs;
    link = stable_link::make(ours, stable::key{}, opts);
    link->on_transport_lost([lost = losses](caf::error e) {
      auto what = describe(e);
      lost->on_frame(text(what), nullptr);
    });
    link->start(up, nullptr);
  }

  /// The transport breaks; a new one is attached with the peer's `last_received`.
  void reconnect(std::optional<uint32_t> peer_last) {
    std::unique_lock<std::mutex> count{losses->mtx};
    auto before = losses->items.size();
    count.unlock();
    peer->abort();
    REQUIRE(losses->wait_items(before + 1));
    auto [ours, theirs] = make_memory_link_pair();
    peer = theirs;
    link->attach(ours, peer_last, stable::key{{1}});
  }
};

} // namespace

// r[verify stable.framing]
TEST_CASE("a stable link sends each payload as the next frame and delivers the peer's items", "[transport][stable]") {
  stable_fixture s;
  REQUIRE(s.link->send(text("hello")));
  auto f = next_frame(s.peer);
  CHECK(f.seq == 0);
  CHECK_FALSE(f.ack);
  CHECK(f.item == "hello");
  send_frame(s.peer, 0, 0, "world");
  REQUIRE(s.up->wait_items(1));
  CHECK(s.up->items[0] == "world");
  // r[verify stable.ack]: from now on our frames acknowledge what we received
  REQUIRE(s.link->send(text("again")));
  auto g = next_frame(s.peer);
  CHECK(g.seq == 1);
  CHECK(g.ack == 0u);
  CHECK(s.link->replay_frames() == 1); // "hello" was acknowledged, "again" not yet
}

// r[verify stable.reconnect]
// r[verify stable.reconnect.client-replay]
TEST_CASE("a new transport gets the frames the peer did not acknowledge, in order, then new ones",
          "[transport][stable]") {
  stable_fixture s;
  REQUIRE(s.link->send(text("alpha")));
  REQUIRE(s.link->send(text("beta")));
  CHECK(next_frame(s.peer).item == "alpha");
  CHECK(next_frame(s.peer).item == "beta");
  bool all_acked = GENERATE(false, true);
  INFO("peer acknowledged both: " << all_acked);
  send_frame(s.peer, 0, all_acked ? 1 : 0, "ack");
  REQUIRE(s.up->wait_items(1));
  s.reconnect(all_acked ? 1 : 0);
  CHECK(s.link->last_received() == 0u); // what the next ClientHello carries
  REQUIRE(s.link->send(text("gamma")));
  if (!all_acked) {
    auto replayed = next_frame(s.peer);
    CHECK(replayed.seq == 1);
    CHECK(replayed.item == "beta");
  }
  auto gamma = next_frame(s.peer);
  CHECK(gamma.seq == 2);
  CHECK(gamma.item == "gamma");
  CHECK(gamma.ack == 0u);
  // The session above never saw the break.
  std::lock_guard<std::mutex> guard{s.up->mtx};
  CHECK_FALSE(s.up->ended);
}

// r[verify stable.seq.monotonic]
TEST_CASE("frames the stable link has seen are skipped; a gap or an ack for nothing sent ends the input",
          "[transport][stable]") {
  stable_fixture s;
  SECTION("duplicates are skipped") {
    send_frame(s.peer, 0, std::nullopt, "first");
    send_frame(s.peer, 0, std::nullopt, "duplicate-first");
    send_frame(s.peer, 1, std::nullopt, "second");
    REQUIRE(s.up->wait_items(2));
    CHECK(s.up->items == std::vector<std::string>{"first", "second"});
  }
  SECTION("a missing frame is a protocol error") {
    send_frame(s.peer, 0, std::nullopt, "first");
    send_frame(s.peer, 2, std::nullopt, "third");
    auto end = s.up->wait_end();
    REQUIRE(end);
    CHECK(is(*end, errc::invalid_value));
    CHECK(s.up->items == std::vector<std::string>{"first"});
  }
  SECTION("an ack for a frame never sent is a protocol error") {
    send_frame(s.peer, 0, 3, "lying");
    auto end = s.up->wait_end();
    REQUIRE(end);
    CHECK(is(*end, errc::invalid_value));
    CHECK(s.up->items.empty());
  }
  SECTION("bytes that are not a frame end the input") {
    REQUIRE(s.peer->send(byte_buffer{1, 2, 3}));
    REQUIRE(s.up->wait_end());
  }
}

TEST_CASE("sequence numbers cross the u32 wrap with acks, duplicates and replay", "[transport][stable]") {
  stable_options opts;
  opts.first_seq = 0xfffffffeu;
  stable_fixture s{opts};
  for (auto w : {"a", "b", "c", "d"})
    REQUIRE(s.link->send(text(w)));
  std::vector<uint32_t> sent;
  for (int i = 0; i < 4; ++i)
    sent.push_back(next_frame(s.peer).seq);
  CHECK(sent == std::vector<uint32_t>{0xfffffffeu, 0xffffffffu, 0, 1});
  // The peer starts near the wrap too; a duplicate across it is skipped.
  send_frame(s.peer, 0xffffffffu, 0xffffffffu, "x");
  send_frame(s.peer, 0, 0xffffffffu, "y");
  send_frame(s.peer, 0xffffffffu, 0xffffffffu, "x again");
  send_frame(s.peer, 1, 0xffffffffu, "z");
  REQUIRE(s.up->wait_items(3));
  CHECK(s.up->items == std::vector<std::string>{"x", "y", "z"});
  CHECK(s.link->replay_frames() == 2); // c and d
  s.reconnect(0xffffffffu);
  auto c = next_frame(s.peer);
  auto d = next_frame(s.peer);
  CHECK(c.seq == 0);
  CHECK(c.item == "c");
  CHECK(d.seq == 1);
  CHECK(d.item == "d");
}

TEST_CASE("a full replay buffer makes the stable link congested until acks drain it", "[transport][stable]") {
  stable_options opts;
  opts.replay = {2, 1 << 20};
  stable_fixture s{opts};
  REQUIRE(s.link->send(text("one")));
  CHECK_FALSE(s.link->congested());
  REQUIRE(s.link->send(text("two")));
  CHECK(s.link->congested());
  std::promise<void> drained;
  s.link->when_drained([&] { drained.set_value(); });
  auto f = drained.get_future();
  CHECK(f.wait_for(0s) == std::future_status::timeout);
  REQUIRE(s.link->send(text("three"))); // never refused, never dropped
  send_frame(s.peer, 0, 2, "ack all");
  REQUIRE(f.wait_for(bound) == std::future_status::ready);
  CHECK_FALSE(s.link->congested());
  CHECK(s.link->replay_frames() == 0);
}

// r[verify stable.ack]
TEST_CASE("a stable link that only receives acknowledges with an ack-only frame after a number of frames or bytes",
          "[transport][stable]") {
  stable_options opts;
  bool by_bytes = GENERATE(false, true);
  INFO("trigger by bytes: " << by_bytes);
  opts.ack_after_frames = by_bytes ? 0 : 4;
  opts.ack_after_bytes = by_bytes ? 10 : 0;
  stable_fixture s{opts};
  REQUIRE(s.link->send(text("hello")));
  CHECK(next_frame(s.peer).seq == 0);
  // by frames: four items; by bytes: two items of six bytes.
  int items = by_bytes ? 2 : 4;
  for (int i = 0; i < items; ++i)
    send_frame(s.peer, static_cast<uint32_t>(i), std::nullopt, "item-" + std::to_string(i));
  auto ack = next_frame(s.peer);
  CHECK(ack.seq == 0); // our last frame again: a duplicate for the peer
  CHECK(ack.ack == static_cast<uint32_t>(items - 1));
  CHECK(ack.item.empty());
  CHECK(s.link->replay_frames() == 1); // an ack-only frame is not kept for replay
  // A data frame carries the ack and starts the count again.
  REQUIRE(s.link->send(text("data")));
  auto data = next_frame(s.peer);
  CHECK(data.seq == 1);
  CHECK(data.item == "data");
}

/// Two started stable links over a memory link pair, each with a collecting receiver.
struct stable_pair {
  std::shared_ptr<stable_link> a, b;
  std::shared_ptr<collecting_receiver> a_up, b_up;
};

stable_pair started_stable_pair(uint32_t ack_after_frames) {
  auto [a_raw, b_raw] = make_memory_link_pair();
  stable_options opts;
  opts.ack_after_frames = ack_after_frames;
  stable_pair p{stable_link::make(a_raw, stable::key{}, opts), stable_link::make(b_raw, stable::key{}, opts),
                std::make_shared<collecting_receiver>(), std::make_shared<collecting_receiver>()};
  p.a->start(p.a_up, nullptr);
  p.b->start(p.b_up, nullptr);
  return p;
}

TEST_CASE("a one-way stream between two stable links keeps the sender's replay buffer at the ack interval",
          "[transport][stable]") {
  auto [a, b, a_up, b_up] = started_stable_pair(64);
  REQUIRE(b->send(text("open"))); // the receiver's only frame of its own
  // Memory links deliver on the sending thread, so each send below runs the receiver's
  // delivery and then its ack before it returns.
  size_t most = 0;
  for (int i = 0; i < 10000; ++i) {
    REQUIRE(a->send(text("item-" + std::to_string(i))));
    most = std::max(most, a->replay_frames());
  }
  CHECK(most <= 64);
  CHECK_FALSE(a->congested());
  REQUIRE(b_up->wait_items(10000));
  CHECK(b_up->items.back() == "item-9999");
  std::lock_guard<std::mutex> guard{a_up->mtx};
  CHECK(a_up->items == std::vector<std::string>{"open"}); // ack-only frames are not delivered
}

TEST_CASE("two stable links over memory links stream to each other at once, from two threads, without deadlock",
          "[transport][stable]") {
  // A memory link delivers inside send, into the peer's stable link: a stable link that
  // held its state lock across the transport's send waited there for the peer's, which
  // the peer, sending too, held while waiting for ours.
  auto [a, b, a_up, b_up] = started_stable_pair(16);
  constexpr int n = 20000;
  auto stream = [](std::shared_ptr<stable_link> from) {
    return std::async(std::launch::async, [from] {
      for (int i = 0; i < n; ++i)
        if (!from->send(text("item-" + std::to_string(i))))
          return false;
      return true;
    });
  };
  auto to_b = stream(a);
  auto to_a = stream(b);
  bool done = to_b.wait_for(60s) == std::future_status::ready && to_a.wait_for(60s) == std::future_status::ready;
  if (!done) {
    // The two senders are stuck for good: neither can be joined, so end the process.
    FAIL_CHECK("the two senders deadlocked");
    std::_Exit(1);
  }
  CHECK(to_b.get());
  CHECK(to_a.get());
  REQUIRE(b_up->wait_items(n));
  REQUIRE(a_up->wait_items(n));
  std::lock_guard<std::mutex> ga{a_up->mtx}, gb{b_up->mtx};
  CHECK(a_up->items.back() == "item-" + std::to_string(n - 1));
  CHECK(b_up->items.back() == "item-" + std::to_string(n - 1));
}

// r[verify stable.reconnect.failure]
TEST_CASE("a ServerHello saying REJECTED fails the stable handshake with session_lost", "[transport][stable]") {
  auto [ours, theirs] = make_memory_link_pair();
  auto acceptor = std::async(std::launch::async, [peer = theirs] {
    auto hello = peer->recv();
    if (!hello || !*hello || !stable::parse_client_hello(**hello))
      return false;
    return static_cast<bool>(peer->send(stable::encode(stable::server_hello{true, {}, std::nullopt})));
  });
  auto wrapped = stable_as_initiator(ours);
  REQUIRE(acceptor.get());
  REQUIRE_FALSE(wrapped);
  CHECK(is(wrapped.error(), errc::session_lost));
}

// r[verify stable.handshake]
TEST_CASE("the stable hellos give both ends the acceptor's key; a reconnect hello with a key this acceptor does "
          "not hold is REJECTED",
          "[transport][stable]") {
  auto [ours, theirs] = make_memory_link_pair();
  auto acceptor = std::async(std::launch::async, [peer = theirs] { return stable_as_acceptor(peer); });
  auto initiator = stable_as_initiator(ours);
  auto accepted = acceptor.get();
  REQUIRE(initiator);
  REQUIRE(accepted);
  CHECK((*initiator)->key() == (*accepted)->key());
  CHECK((*initiator)->key() != stable::key{});
  auto [a, b] = make_memory_link_pair();
  REQUIRE(a->send(stable::encode(stable::client_hello{stable::key{{7}}, 3})));
  auto refused = stable_as_acceptor(b);
  REQUIRE_FALSE(refused);
  CHECK(is(refused.error(), errc::session_lost));
  auto answer = a->recv();
  REQUIRE(answer);
  REQUIRE(*answer);
  CHECK(stable::parse_server_hello(**answer)->rejected);
}
