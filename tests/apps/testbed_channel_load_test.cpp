// A peer may start thousands of channel calls on vox-testbed's server: every one of them
// runs without a thread of its own, and every one completes.
#include <catch2/catch.hpp>

#include <future>

#include <caf/event_based_actor.hpp>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"
#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"

using namespace vox;
using namespace vox::test;
using namespace vox::testbed;

TEST_CASE("3,200 concurrent channel calls on 50 virtual connections start no thread and all complete",
          "[testbed][channels][tcp]") {
  constexpr size_t connections = 50;
  constexpr size_t calls_per_connection = 64; // the server's max_concurrent_requests
  constexpr size_t calls = connections * calls_per_connection;
  constexpr int32_t items = default_channel_credit + 1; // the last one needs the handler's grant
  actor_fixture f;
  session_server::config cfg;
  cfg.options = serving_options();
  cfg.options.log = logless().log;
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto s = connect_session(f.sys, *lnk, logless());
  REQUIRE(s);
  f.track(*s);
  caller root{s->root};
  std::vector<caller> conns;
  for (size_t i = 0; i < connections; ++i) {
    auto conn = f.open(s->actor, {parity::odd, 64});
    REQUIRE(conn);
    conns.emplace_back(*conn);
  }
  client<service_type> tb{root};
  REQUIRE(tb.call<m::echo>(f.self, {"warm"}, wait_bound)); // every thread that will ever exist runs
  auto idle = thread_count();

  // One event-based actor makes every call and counts the right answers.
  auto outs = std::make_shared<std::vector<tx<int32_t>>>();
  auto ins = std::make_shared<std::vector<rx<int32_t>>>();
  for (size_t i = 0; i < calls; ++i) {
    auto [out, in] = channel<int32_t>();
    outs->push_back(out);
    ins->push_back(in);
  }
  std::promise<size_t> answered;
  f.sys.spawn(
    [conns, ins](caf::event_based_actor* self, std::promise<size_t>* result) {
      auto right = std::make_shared<size_t>(0);
      auto done = std::make_shared<size_t>(0);
      for (size_t i = 0; i < calls; ++i) {
        client<service_type> c{conns[i / calls_per_connection]};
        c.request<m::sum>(self, {(*ins)[i]}, [=](caf::expected<m::sum::result_type> r) {
          if (r && r->is_ok() && r->ok() == items * (items - 1) / 2)
            ++*right;
          if (++*done == calls)
            result->set_value(*right);
        });
      }
    },
    &answered);
  ins.reset();

  // Feed every channel past its initial credit: the last item of each goes out only once
  // that call's handler consumed items and granted more, i.e. once all 3,200 run at once.
  for (auto& out : *outs)
    for (int32_t v = 0; v < items; ++v)
      REQUIRE(out.send_for(v, std::chrono::seconds{60}));
  CHECK(thread_count() == idle);
  for (auto& out : *outs)
    out.close();
  auto fut = answered.get_future();
  REQUIRE(fut.wait_for(std::chrono::seconds{120}) == std::future_status::ready);
  CHECK(fut.get() == calls);
  CHECK(thread_count() == idle);
}
