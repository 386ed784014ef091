// Started links: socket links served by the I/O reactor (each test on both backends,
// epoll and io_uring), memory links that deliver on the sender's thread. Every wait is
// bounded; nothing sleeps to synchronise.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <sys/socket.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "protocol/error.hpp"
#include "support/started_links.hpp"
#include "transport/framing.hpp"
#include "transport/io_reactor.hpp"
#include "transport/memory_link.hpp"
#include "transport/socket_link.hpp"

using namespace vox;
using namespace vox::test;
using namespace std::chrono_literals;

TEST_CASE("many socket links share one I/O thread", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  auto threads_before = test::thread_count();
  constexpr size_t n = 200;
  std::vector<socket_pair> pairs(n);
  std::vector<link_ptr> links;
  std::vector<std::shared_ptr<collector>> sinks;
  for (auto& p : pairs) {
    links.push_back(make_socket_link(std::move(p.ours), "pair"));
    sinks.push_back(std::make_shared<collector>());
    links.back()->start(sinks.back(), f.io);
  }
  // Every link sends and receives while none has a thread of its own.
  CHECK(test::thread_count() == threads_before);
  for (size_t i = 0; i < n; ++i) {
    auto payload = pattern(16, static_cast<uint8_t>(i));
    REQUIRE(test::write_all(pairs[i].theirs.get(), framed(payload)));
    REQUIRE(links[i]->send(payload));
  }
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(sinks[i]->wait_frames(1));
    CHECK(sinks[i]->frames()[0] == pattern(16, static_cast<uint8_t>(i)));
    CHECK(test::read_exactly(pairs[i].theirs.get(), 20) == framed(pattern(16, static_cast<uint8_t>(i))));
  }
  for (auto& l : links)
    l->abort();
  for (auto& s : sinks)
    REQUIRE(s->wait_end());
}

// r[verify transport.stream]
TEST_CASE("frames written one byte at a time arrive whole and in order", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  started_link s{f};
  auto& sink = s.sink;
  auto& p = s.p;
  byte_buffer stream;
  std::vector<byte_buffer> sent;
  for (size_t size : {0, 1, 3, 4, 5, 100, 70000}) {
    sent.push_back(pattern(size, static_cast<uint8_t>(size)));
    auto fr = framed(sent.back());
    stream.insert(stream.end(), fr.begin(), fr.end());
  }
  // Byte by byte for the small frames, then the rest in one go.
  size_t i = 0;
  for (; i < 200; ++i)
    REQUIRE(::send(p.theirs.get(), stream.data() + i, 1, MSG_NOSIGNAL) == 1);
  REQUIRE(test::write_all(p.theirs.get(), byte_span{stream}.subspan(i)));
  REQUIRE(sink->wait_frames(sent.size()));
  CHECK(sink->frames() == sent);
  ::shutdown(p.theirs.get(), SHUT_WR);
  REQUIRE(sink->wait_end());
  CHECK_FALSE(sink->reason()); // a clean end at a frame boundary
}

TEST_CASE("a started socket link reports a stream that ends mid-frame", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  started_link s{f};
  auto& sink = s.sink;
  auto& p = s.p;
  byte_buffer partial;
  append_frame_header(partial, 100);
  partial.resize(partial.size() + 10, 0xab);
  REQUIRE(test::write_all(p.theirs.get(), partial));
  ::shutdown(p.theirs.get(), SHUT_WR);
  REQUIRE(sink->wait_end());
  CHECK(is(sink->reason(), errc::link_closed));
  CHECK(sink->frames().empty());
}

TEST_CASE("a started socket link refuses an oversized frame from its header alone", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  link_options opts;
  opts.max_frame_size = 64;
  started_link s{f, opts};
  auto& sink = s.sink;
  auto& p = s.p;
  byte_buffer header;
  append_frame_header(header, 65);
  REQUIRE(test::write_all(p.theirs.get(), header));
  REQUIRE(sink->wait_end());
  CHECK(is(sink->reason(), errc::frame_too_large));
}

TEST_CASE("frames read ahead before start are delivered first", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  socket_pair p;
  auto lnk = make_socket_link(std::move(p.ours), "pair");
  byte_buffer stream;
  for (uint8_t k = 1; k <= 3; ++k) {
    auto fr = framed(pattern(8, k));
    stream.insert(stream.end(), fr.begin(), fr.end());
  }
  REQUIRE(test::write_all(p.theirs.get(), stream));
  // The blocking reader of the handshake reads ahead: frames 2 and 3 are in its buffer.
  auto first = lnk->recv();
  REQUIRE(first);
  REQUIRE(*first);
  CHECK(**first == pattern(8, 1));
  auto sink = std::make_shared<collector>();
  lnk->start(sink, f.io);
  REQUIRE(sink->wait_frames(2));
  CHECK(sink->frames() == std::vector<byte_buffer>{pattern(8, 2), pattern(8, 3)});
  lnk->abort();
  REQUIRE(sink->wait_end());
}

TEST_CASE("sends to a started link never block, and a slow reader does not stall other links",
          "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  socket_pair slow, fast;
  link_options opts;
  opts.max_outbound_bytes = 64u * 1024 * 1024;
  auto slow_link = make_socket_link(std::move(slow.ours), "slow", opts);
  auto fast_link = make_socket_link(std::move(fast.ours), "fast", opts);
  auto slow_sink = std::make_shared<collector>();
  auto fast_sink = std::make_shared<collector>();
  slow_link->start(slow_sink, f.io);
  fast_link->start(fast_sink, f.io);
  // Far more than the socket buffers hold: a blocking send would hang here.
  constexpr size_t frames = 256;
  for (size_t i = 0; i < frames; ++i)
    REQUIRE(slow_link->send(pattern(64 * 1024, static_cast<uint8_t>(i))));
  // The other link on the same I/O thread still works both ways.
  for (uint8_t k = 0; k < 50; ++k) {
    REQUIRE(fast_link->send(pattern(32, k)));
    CHECK(test::read_exactly(fast.theirs.get(), 36) == framed(pattern(32, k)));
    REQUIRE(test::write_all(fast.theirs.get(), framed(pattern(32, k))));
    REQUIRE(fast_sink->wait_frames(k + 1u));
  }
  // The slow peer finally reads: every frame arrives, whole and in order, although the
  // writes were cut short by a full socket many times.
  for (size_t i = 0; i < frames; ++i)
    REQUIRE(test::read_exactly(slow.theirs.get(), 4 + 64 * 1024) == framed(pattern(64 * 1024, static_cast<uint8_t>(i))));
  slow_link->abort();
  fast_link->abort();
  REQUIRE(slow_sink->wait_end());
  REQUIRE(fast_sink->wait_end());
}

TEST_CASE("a peer that stops reading fills the bounded outbound queue and the link fails with "
          "backpressure",
          "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  link_options opts;
  opts.max_outbound_bytes = 1024 * 1024;
  started_link s{f, opts};
  auto& lnk = s.lnk;
  auto& sink = s.sink;
  caf::error failure;
  for (size_t i = 0; i < 1000 && !failure; ++i)
    if (auto sent = lnk->send(pattern(16 * 1024, 1)); !sent)
      failure = sent.error();
  REQUIRE(failure);
  CHECK(is(failure, errc::backpressure));
  // The receiving side hears why the link ended.
  REQUIRE(sink->wait_end());
  CHECK(is(sink->reason(), errc::backpressure));
  CHECK_FALSE(lnk->send(pattern(8, 1)));
}

TEST_CASE("a started socket link reports congestion above its high-water mark until the peer "
          "drains it below the low-water mark",
          "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  link_options opts;
  opts.high_water_bytes = 256 * 1024;
  opts.low_water_bytes = 64 * 1024;
  started_link s{f, opts};
  std::mutex mtx;
  std::condition_variable cv;
  int drained = 0;
  auto note_drained = [&] {
    std::lock_guard<std::mutex> guard{mtx};
    ++drained;
    cv.notify_all();
  };
  // The I/O thread calls note_drained: read the count under the same mutex.
  auto times_drained = [&] {
    std::lock_guard<std::mutex> guard{mtx};
    return drained;
  };
  // Not congested: the callback runs at once.
  CHECK_FALSE(s.lnk->congested());
  s.lnk->when_drained(note_drained);
  CHECK(times_drained() == 1);
  // The peer reads nothing: past the socket buffers, the queue grows over the mark.
  size_t sent = 0;
  while (!s.lnk->congested() && sent < 4096) {
    REQUIRE(s.lnk->send(pattern(16 * 1024, 3)));
    ++sent;
  }
  REQUIRE(s.lnk->congested());
  s.lnk->when_drained(note_drained);
  CHECK(times_drained() == 1);
  // Still congested after the peer has read a little: the mark is the low one.
  REQUIRE(test::read_exactly(s.theirs(), 4 + 16 * 1024) == framed(pattern(16 * 1024, 3)));
  CHECK(s.lnk->congested());
  // Once the peer reads everything, the waiter hears it, once.
  for (size_t i = 1; i < sent; ++i)
    REQUIRE(test::read_exactly(s.theirs(), 4 + 16 * 1024) == framed(pattern(16 * 1024, 3)));
  {
    std::unique_lock<std::mutex> guard{mtx};
    REQUIRE(cv.wait_for(guard, 20s, [&] { return drained == 2; }));
  }
  CHECK_FALSE(s.lnk->congested());
  s.lnk->abort();
  REQUIRE(s.sink->wait_end());
  CHECK(times_drained() == 2);
}

TEST_CASE("a link that fails while congested releases whoever waits for it to drain", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  link_options opts;
  opts.high_water_bytes = 128 * 1024;
  opts.low_water_bytes = 32 * 1024;
  opts.max_outbound_bytes = 1024 * 1024;
  started_link s{f, opts};
  while (!s.lnk->congested())
    REQUIRE(s.lnk->send(pattern(16 * 1024, 4)));
  std::atomic<bool> released{false};
  s.lnk->when_drained([&] { released = true; });
  CHECK_FALSE(released.load());
  // Past the hard limit the link fails with backpressure, and the waiter is let go.
  caf::error failure;
  for (size_t i = 0; i < 1000 && !failure; ++i)
    if (auto r = s.lnk->send(pattern(16 * 1024, 4)); !r)
      failure = r.error();
  CHECK(is(failure, errc::backpressure));
  CHECK(released.load());
  CHECK_FALSE(s.lnk->congested());
  REQUIRE(s.sink->wait_end());
}

TEST_CASE("a peer that reads nothing within the stall timeout is cut off", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  link_options opts;
  opts.stall_timeout = 200ms;
  started_link s{f, opts};
  auto& lnk = s.lnk;
  auto& sink = s.sink;
  // Enough to fill the socket buffers, well under the queue limit. On a slow machine
  // (sanitizers) the stall deadline may cut the link while we still queue: then a send
  // fails with the same reason.
  for (size_t i = 0; i < 64; ++i)
    if (!lnk->send(pattern(64 * 1024, 2)))
      break;
  REQUIRE(sink->wait_end());
  CHECK(is(sink->reason(), errc::backpressure));
}

TEST_CASE("aborting a started socket link ends its input and fails later sends", "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  started_link s{f};
  auto& lnk = s.lnk;
  auto& sink = s.sink;
  auto& p = s.p;
  lnk->abort();
  REQUIRE(sink->wait_end());
  CHECK(is(sink->reason(), errc::closed));
  CHECK(sink->ends() == 1);
  auto sent = lnk->send(pattern(4, 1));
  REQUIRE_FALSE(sent);
  CHECK(is(sent.error(), errc::closed));
  CHECK(test::reads_eof(p.theirs.get()));
}

TEST_CASE("closing a started socket link flushes what is queued before the peer sees end of stream",
          "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  started_link s{f};
  auto& lnk = s.lnk;
  auto& sink = s.sink;
  auto& p = s.p;
  for (size_t i = 0; i < 64; ++i)
    REQUIRE(lnk->send(pattern(32 * 1024, static_cast<uint8_t>(i))));
  lnk->close();
  for (size_t i = 0; i < 64; ++i)
    REQUIRE(test::read_exactly(p.theirs.get(), 4 + 32 * 1024) == framed(pattern(32 * 1024, static_cast<uint8_t>(i))));
  CHECK(test::reads_eof(p.theirs.get()));
  // Our side stops once the peer closes too.
  ::shutdown(p.theirs.get(), SHUT_WR);
  REQUIRE(sink->wait_end());
}

TEST_CASE("a started memory link delivers on the sender's thread, queued payloads first",
          "[transport][io]") {
  auto [a, b] = make_memory_link_pair();
  REQUIRE(a->send(pattern(4, 1)));
  REQUIRE(a->send(pattern(4, 2)));
  auto sink = std::make_shared<collector>();
  b->start(sink, nullptr);
  CHECK(sink->frames() == std::vector<byte_buffer>{pattern(4, 1), pattern(4, 2)});
  // No thread in between: the frame is there when send returns.
  REQUIRE(a->send(pattern(4, 3)));
  CHECK(sink->frames().size() == 3);
  a->close();
  CHECK(sink->ends() == 1);
  CHECK_FALSE(sink->reason());
}

TEST_CASE("a started memory link reports an oversized payload and an abort", "[transport][io]") {
  link_options opts;
  opts.max_frame_size = 8;
  {
    auto [a, b] = make_memory_link_pair(opts);
    auto sink = std::make_shared<collector>();
    b->start(sink, nullptr);
    REQUIRE(a->send(pattern(9, 1)));
    CHECK(sink->ends() == 1);
    CHECK(is(sink->reason(), errc::frame_too_large));
  }
  {
    auto [a, b] = make_memory_link_pair(opts);
    auto sink = std::make_shared<collector>();
    b->start(sink, nullptr);
    b->abort();
    CHECK(sink->ends() == 1);
    CHECK(is(sink->reason(), errc::closed));
    auto sent = a->send(pattern(4, 1));
    REQUIRE_FALSE(sent);
    CHECK(is(sent.error(), errc::link_closed));
  }
}

TEST_CASE("a peer that goes away while a write waits ends the link instead of spinning its I/O thread",
          "[transport][io]") {
  reactor_fixture f{GENERATE(io_backend::epoll, io_backend::io_uring)};
  socket_pair gone, other;
  link_options opts;
  opts.max_outbound_bytes = 64u * 1024 * 1024;
  auto gone_link = make_socket_link(std::move(gone.ours), "gone", opts);
  auto other_link = make_socket_link(std::move(other.ours), "other", opts);
  auto gone_sink = std::make_shared<collector>();
  auto other_sink = std::make_shared<collector>();
  gone_link->start(gone_sink, f.io);
  other_link->start(other_sink, f.io);
  // More than the socket holds: part of a frame stays in flight, the loop waits to write.
  for (uint8_t i = 0; i < 64; ++i)
    REQUIRE(gone_link->send(pattern(64 * 1024, i)));
  gone.theirs.reset(); // unread data: the next write fails (EPIPE / ECONNRESET)
  REQUIRE(gone_sink->wait_end());
  CHECK(gone_sink->reason());
  CHECK_FALSE(gone_link->send(pattern(32, 1)));
  // The shared I/O thread still serves the other link.
  for (uint8_t k = 0; k < 10; ++k) {
    REQUIRE(other_link->send(pattern(32, k)));
    CHECK(test::read_exactly(other.theirs.get(), 36) == framed(pattern(32, k)));
  }
  other_link->abort();
  REQUIRE(other_sink->wait_end());
}
