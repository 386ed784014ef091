// In-memory link pairs: ordering, empty payloads, close, abort and the frame limit.
#include <catch2/catch.hpp>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "support/transport_helpers.hpp"
#include "transport/memory_link.hpp"

using namespace vox;
using vox::test::peer_thread;
using vox::test::watchdog;

namespace {

byte_buffer numbered(size_t i) {
  byte_buffer out((i * 31) % 257);
  for (size_t k = 0; k < out.size(); ++k)
    out[k] = static_cast<uint8_t>(i + k);
  return out;
}

} // namespace

// r[verify transport.memory]
TEST_CASE("memory links deliver many payloads in order in both directions", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog_a{a};
  watchdog dog_b{b};
  for (size_t i = 0; i < 1000; ++i) {
    REQUIRE(a->send(numbered(i)));
    REQUIRE(b->send(numbered(i + 1)));
  }
  for (size_t i = 0; i < 1000; ++i) {
    auto at_b = b->recv();
    REQUIRE(at_b);
    REQUIRE(*at_b);
    CHECK(**at_b == numbered(i));
    auto at_a = a->recv();
    REQUIRE(at_a);
    REQUIRE(*at_a);
    CHECK(**at_a == numbered(i + 1));
  }
}

// r[verify link.message.empty]
TEST_CASE("memory links deliver empty payloads", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog{b};
  REQUIRE(a->send({}));
  REQUIRE(a->send(byte_buffer{1}));
  REQUIRE(a->send({}));
  a->close();
  for (auto expected : {byte_buffer{}, byte_buffer{1}, byte_buffer{}}) {
    auto got = b->recv();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == expected);
  }
  auto eof = b->recv();
  REQUIRE(eof);
  CHECK_FALSE(*eof);
}

// r[verify link.rx.eof]
TEST_CASE("closing a memory link lets the peer drain and then see end of stream",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog_a{a};
  watchdog dog_b{b};
  REQUIRE(a->send(byte_buffer{1, 2}));
  REQUIRE(a->send(byte_buffer{3}));
  a->close();
  auto late = a->send(byte_buffer{4});
  REQUIRE_FALSE(late);
  CHECK(is(late.error(), errc::closed));
  // Only our direction is closed: the peer can still talk to us.
  REQUIRE(b->send(byte_buffer{9}));
  auto back = a->recv();
  REQUIRE(back);
  REQUIRE(*back);
  CHECK(**back == byte_buffer{9});
  for (auto expected : {byte_buffer{1, 2}, byte_buffer{3}}) {
    auto got = b->recv();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == expected);
  }
  for (int i = 0; i < 2; ++i) {
    auto eof = b->recv();
    REQUIRE(eof);
    CHECK_FALSE(*eof);
  }
}

TEST_CASE("aborting a memory link wakes a blocked recv with closed", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  // Should abort fail to wake the reader, aborting the peer ends its stream instead.
  watchdog dog{b};
  std::atomic<pid_t> tid{0};
  std::atomic<bool> finished{false};
  std::optional<caf::expected<std::optional<byte_buffer>>> result;
  {
    peer_thread reader{[&a = a] { a->abort(); }, [&] {
                         tid = vox::test::current_tid();
                         result.emplace(a->recv());
                         finished = true;
                       }};
    REQUIRE(vox::test::wait_until_blocked(tid, finished));
    a->abort();
    reader.join();
  }
  CHECK_FALSE(dog.fired());
  REQUIRE(result);
  REQUIRE_FALSE(*result);
  CHECK(is(result->error(), errc::closed));
}

TEST_CASE("an aborted memory link fails recv and send and the peer sees end of stream",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog_a{a};
  watchdog dog_b{b};
  REQUIRE(a->send(byte_buffer{1}));
  REQUIRE(b->send(byte_buffer{2}));
  a->abort();
  a->abort();
  auto got = a->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::closed));
  auto sent = a->send(byte_buffer{3});
  REQUIRE_FALSE(sent);
  CHECK(is(sent.error(), errc::closed));
  // What we sent before the abort still arrives, then end of stream.
  auto at_b = b->recv();
  REQUIRE(at_b);
  REQUIRE(*at_b);
  CHECK(**at_b == byte_buffer{1});
  auto eof = b->recv();
  REQUIRE(eof);
  CHECK_FALSE(*eof);
  auto to_dead = b->send(byte_buffer{4});
  REQUIRE_FALSE(to_dead);
  CHECK(is(to_dead.error(), errc::link_closed));
}

TEST_CASE("destroying a memory link ends the peer's stream", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog{b};
  REQUIRE(a->send(byte_buffer{5}));
  a.reset();
  auto got = b->recv();
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == byte_buffer{5});
  auto eof = b->recv();
  REQUIRE(eof);
  CHECK_FALSE(*eof);
}

TEST_CASE("memory links enforce the frame limit on receipt", "[transport]") {
  link_options options;
  options.max_frame_size = 16;
  auto [a, b] = make_memory_link_pair(options);
  watchdog dog{b};
  REQUIRE(a->send(byte_buffer(16, 0xaa)));
  // The sender cannot know what the receiver accepts, as on a socket.
  REQUIRE(a->send(byte_buffer(17, 0xbb)));
  REQUIRE(a->send(byte_buffer(1, 0xcc)));
  auto at_limit = b->recv();
  REQUIRE(at_limit);
  REQUIRE(*at_limit);
  CHECK(**at_limit == byte_buffer(16, 0xaa));
  auto over = b->recv();
  REQUIRE_FALSE(over);
  CHECK(is(over.error(), errc::frame_too_large));
  CHECK(describe(over.error()) == "frame_too_large: frame of 17 bytes exceeds the 16-byte limit");
  // Like a socket link, the link stays failed.
  auto after = b->recv();
  REQUIRE_FALSE(after);
  CHECK(is(after.error(), errc::frame_too_large));
}

TEST_CASE("memory links keep each payload whole when several threads send", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog{b};
  constexpr int senders = 4;
  constexpr int per_sender = 250;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s)
    threads.emplace_back([&a = a, &failures, s] {
      for (int i = 0; i < per_sender; ++i) {
        byte_buffer payload(2 + i % 50, static_cast<uint8_t>(s));
        payload[0] = static_cast<uint8_t>(i);
        if (!a->send(payload))
          ++failures;
      }
    });
  for (auto& t : threads)
    t.join();
  a->close();
  std::vector<int> next(senders, 0);
  int received = 0;
  for (;;) {
    auto got = b->recv();
    REQUIRE(got);
    if (!*got)
      break;
    auto& p = **got;
    REQUIRE(p.size() >= 2);
    int s = p[1];
    REQUIRE(s < senders);
    CHECK(p[0] == static_cast<uint8_t>(next[s]));
    CHECK(p.size() == static_cast<size_t>(2 + next[s] % 50));
    ++next[s];
    ++received;
  }
  CHECK(failures == 0);
  CHECK(received == senders * per_sender);
}

TEST_CASE("memory links describe themselves", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  CHECK(a->describe().rfind("memory ", 0) == 0);
  CHECK(a->describe() != b->describe());
}
