// The stable conduit against link faults, in two processes: this test is the client,
// `vox-testbed serve` the server, and a proxy between them cuts the TCP link at random
// moments, mostly inside a frame. The session above must never notice.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <random>

#include "actors/service.hpp"
#include "apps/testbed/testbed_types.hpp"
#include "support/cutting_proxy.hpp"
#include "support/session_fixture.hpp"
#include "support/testbed_process.hpp"
#include "transport/tcp_link.hpp"

using namespace vox;
using namespace vox::test;
using namespace std::chrono_literals;

namespace {

namespace m = testbed::m;

constexpr int items = 100000;
constexpr int call_threads = 4;
constexpr int calls_per_thread = 2500;
constexpr auto patience = 60s; // per item, per call: cuts and reconnects included

// ASan's quarantine keeps freed memory resident, and TSan's shadow memory grows with what
// was ever touched: RSS says nothing about growth under either.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool rss_is_meaningful = false;
#else
constexpr bool rss_is_meaningful = true;
#endif

/// Records the first failure of any thread (Catch2 assertions are not thread-safe).
struct failures {
  std::mutex mtx;
  std::string first;
  std::atomic<int> count{0};
  void add(std::string why) {
    if (count++ == 0) {
      std::lock_guard<std::mutex> guard{mtx};
      first = std::move(why);
    }
  }
};

} // namespace

// r[verify stable.reconnect]
// r[verify stable.seq.monotonic]
TEST_CASE("over the stable conduit, through a proxy that cuts the TCP link at random, 100,000 channel items "
          "arrive once and in order and 10,000 calls each get their answer, between two processes",
          "[apps][stable][tcp][fault]") {
  // Compressed, the zstd streams sit above the conduit: its replay must carry them across
  // every cut without a new negotiation.
  bool compressed = GENERATE(false, true);
  INFO("compressed " << compressed);
  std::vector<std::string> serve{"serve", "--port", "0"};
  if (compressed)
    serve.insert(serve.end(), {"--compress", "prefer"});
  testbed_process server{serve};
  REQUIRE(server.port() != 0);
  auto seed = std::random_device{}();
  INFO("proxy seed " << seed);
  // About 7 MB cross the proxy (6.4 MB compressed: these Messages are tiny): a cut every
  // 32–160 KiB makes some seventy, every 16–80 KiB (compressed) over a hundred.
  size_t cut_min = compressed ? 16 << 10 : 32 << 10;
  cutting_proxy proxy{server.port(), cut_min, cut_min * 5, seed};
  REQUIRE(proxy.port() != 0);

  actor_fixture f;
  auto opts = logless();
  opts.conduit = conduit_mode::stable;
  if (compressed)
    opts.compression.mode = compression_mode::require;
  opts.reconnect = [port = proxy.port()] { return tcp_connect("127.0.0.1", port); };
  auto lnk = tcp_connect("127.0.0.1", proxy.port());
  REQUIRE(lnk);
  auto session = connect_session(f.sys, *lnk, opts);
  REQUIRE(session);
  f.track(*session);
  CHECK(f.info(session->actor).link.rfind(compressed ? "zstd over stable over " : "stable over ", 0) == 0);
  client<testbed::service_type> tb{caller{session->root}};
  failures failed;

  // transform echoes every string it receives: the items cross the cuts both ways.
  auto [in_tx, in_rx] = channel<std::string>();
  auto [out_tx, out_rx] = channel<std::string>();
  auto transform = std::async(std::launch::async, [&, in = in_rx, out = out_tx] {
    caf::scoped_actor self{f.sys};
    auto r = tb.call<m::transform>(self, {in, out}, 600s);
    if (!r || !r->is_ok())
      failed.add("transform failed: " + (r ? std::string{"VoxError"} : describe(r.error())));
  });
  auto sender = std::async(std::launch::async, [&, tx = in_tx] {
    for (int i = 0; i < items && failed.count == 0; ++i)
      if (auto sent = tx.send_for(std::to_string(i), patience); !sent)
        failed.add("item " + std::to_string(i) + " not sent: " + describe(sent.error()));
    tx.close();
  });
  std::vector<std::future<void>> callers;
  for (int t = 0; t < call_threads; ++t)
    callers.push_back(std::async(std::launch::async, [&, t] {
      caf::scoped_actor self{f.sys};
      for (int j = 0; j < calls_per_thread && failed.count == 0; ++j) {
        uint64_t v = uint64_t(t) << 32 | uint64_t(j);
        auto r = tb.call<m::echo_u64>(self, {v}, patience);
        if (!r || !r->is_ok() || r->ok() != v)
          failed.add("call " + std::to_string(v) + ": " + (r ? std::string{"wrong answer"} : describe(r.error())));
      }
    }));

  long client_rss_warm = -1, server_rss_warm = -1;
  int received = 0;
  for (; received < items && failed.count == 0; ++received) {
    auto item = out_rx.recv_for(patience);
    if (!item || !*item) {
      failed.add("item " + std::to_string(received) + " missing: "
                 + (item ? std::string{"the channel closed"} : describe(item.error())));
      break;
    }
    if (**item != std::to_string(received)) {
      failed.add("item " + std::to_string(received) + " arrived as " + **item);
      break;
    }
    if (received == items / 10) {
      client_rss_warm = rss_of("/proc/self/status");
      server_rss_warm = server.rss_kib();
    }
  }
  if (failed.count == 0) {
    auto end = out_rx.recv_for(patience);
    if (!end || *end)
      failed.add("no Close after the last item");
  }
  sender.get();
  for (auto& c : callers)
    c.get();
  transform.get();
  auto client_rss = rss_of("/proc/self/status");
  auto server_rss = server.rss_kib();
  // Ended before the proxy goes: it would otherwise dial a proxy that accepts nothing.
  caf::anon_send(session->actor, stop_atom::value);
  CHECK(f.wait_down(session->actor));
  proxy.stop();
  {
    std::lock_guard<std::mutex> guard{failed.mtx};
    INFO(failed.first);
    CHECK(failed.count == 0);
  }
  CHECK(received == items);
  INFO("cuts " << proxy.cuts() << ", inside a frame " << proxy.cuts_inside_frames() << ", bytes "
               << proxy.bytes_forwarded());
  CHECK(proxy.cuts() >= 20);
  CHECK(proxy.cuts_inside_frames() >= 10);
  CHECK(proxy.connections() == proxy.cuts() + 1); // one reconnect per cut, no failed attempt
  // Memory: what a stable conduit may hold is its replay buffer; nothing may pile up per
  // cut.
  const long bound_kib = static_cast<long>(opts.stable.replay.max_bytes >> 10);
  INFO("RSS KiB: client " << client_rss_warm << " -> " << client_rss << ", server " << server_rss_warm << " -> "
                          << server_rss);
  if (rss_is_meaningful) {
    CHECK(client_rss - client_rss_warm <= bound_kib);
    CHECK(server_rss - server_rss_warm <= bound_kib);
  }
  CHECK(server.stop() == 0);
}
