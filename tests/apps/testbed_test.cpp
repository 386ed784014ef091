// The Testbed service: method and type ids, server behaviours, and every client scenario
// against our own server over TCP.
#include <catch2/catch.hpp>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"
#include "support/session_fixture.hpp"
#include "support/testbed_scenarios.hpp"

using namespace vox;
using namespace vox::test;
using namespace vox::testbed;

namespace {

template <class T>
uint64_t type_id() {
  return schema::schema_payload_of<T>().root.type_id;
}

} // namespace

// r[verify schema.method-id]
TEST_CASE("every Testbed method id equals the reference table", "[testbed]") {
  using S = service_type;
  CHECK(S::id<m::echo>() == 0x880bc4eee23574beull);
  CHECK(S::id<m::reverse>() == 0x1c223f30e180392aull);
  CHECK(S::id<m::divide>() == 0xfb68d9318f830875ull);
  CHECK(S::id<m::lookup>() == 0xa15ff52094712a3bull);
  CHECK(S::id<m::sum>() == 0x51f9cfd8e86577c9ull);
  CHECK(S::id<m::generate>() == 0x239e5b99b1f8207aull);
  CHECK(S::id<m::generate_retry_non_idem>() == 0x34419529478cc7b8ull);
  CHECK(S::id<m::generate_retry_idem>() == 0xe2d27fd9098c6ea2ull);
  CHECK(S::id<m::transform>() == 0xcb469cff8d798febull);
  CHECK(S::id<m::echo_point>() == 0x81f5386d589dfbe4ull);
  CHECK(S::id<m::create_person>() == 0x68ffa90b7728bde7ull);
  CHECK(S::id<m::rectangle_area>() == 0x223fe0282d263107ull);
  CHECK(S::id<m::parse_color>() == 0xd4f16ea9eca132e6ull);
  CHECK(S::id<m::shape_area>() == 0x04385a4be2a882f5ull);
  CHECK(S::id<m::create_canvas>() == 0xef421eb5b08c973aull);
  CHECK(S::id<m::process_message>() == 0xe08f0f5254e7a997ull);
  CHECK(S::id<m::get_points>() == 0x598518523a6266bfull);
  CHECK(S::id<m::swap_pair>() == 0x7d55a713ad612bf2ull);
  CHECK(S::id<m::echo_bytes>() == 0x44056c7842fa336cull);
  CHECK(S::id<m::echo_bool>() == 0x5136d8f01a5f496cull);
  CHECK(S::id<m::echo_u64>() == 0x85e2380dbf7ffe65ull);
  CHECK(S::id<m::echo_option_string>() == 0xb1a5bfd205b3fbfcull);
  CHECK(S::id<m::sum_large>() == 0x9a7bed545e088054ull);
  CHECK(S::id<m::generate_large>() == 0x8edfbd65d162f685ull);
  CHECK(S::id<m::all_colors>() == 0xfbfb05bbcaade4a0ull);
  CHECK(S::id<m::describe_point>() == 0x62feb14a8fcf9b6dull);
  CHECK(S::id<m::echo_shape>() == 0x4125b5e678b7b4a5ull);
  CHECK(S::id<m::echo_status_v1>() == 0xc7c5aa845cfb8bf6ull);
  CHECK(S::id<m::echo_tag_v1>() == 0x6619071be5d5c259ull);
  CHECK(S::id<m::echo_profile>() == 0xbd9bcabddeebeb04ull);
  CHECK(S::id<m::echo_record>() == 0x100b0e08da4b8f1aull);
  CHECK(S::id<m::echo_status>() == 0x697590d3ffc36703ull);
  CHECK(S::id<m::echo_tag>() == 0x2bd1b3149d73ce97ull);
  CHECK(S::id<m::echo_measurement>() == 0x3b3d22b015fa1a3full);
  CHECK(S::id<m::echo_config>() == 0xe13a477fb964ce28ull);
}

TEST_CASE("every Testbed type id equals the reference table", "[testbed]") {
  CHECK(type_id<point>() == 0xb92332c67187108full);
  CHECK(type_id<person>() == 0xc841530b759b8ed0ull);
  CHECK(type_id<rectangle>() == 0x6ecf4fe376e23113ull);
  CHECK(type_id<canvas>() == 0x221855c965fb31e1ull);
  CHECK(type_id<tagged_point>() == 0x7f145c7b0ededd20ull);
  CHECK(type_id<tag>() == 0x4620db6c5c627787ull);
  CHECK(type_id<profile>() == 0xbc2cd703968e7d0dull);
  CHECK(type_id<record>() == 0x2ef93123176c696cull);
  CHECK(type_id<measurement>() == 0x0930935d500f9629ull);
  CHECK(type_id<config>() == 0xec2764b25ae6ef1eull);
  CHECK(type_id<color>() == 0x1b57cc7742fabeb0ull);
  CHECK(type_id<shape>() == 0xe407302c560da502ull);
  CHECK(type_id<tb_message>() == 0xbda77ebf97f345a9ull);
  CHECK(type_id<status>() == 0x01542aaa833a2511ull);
  CHECK(type_id<math_error>() == 0xd9d78670738e6064ull);
  CHECK(type_id<lookup_error>() == 0x16d92ac9e3bd73baull);
}

TEST_CASE("every client scenario passes against our Testbed server over TCP", "[testbed][tcp]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, testbed_server());
  REQUIRE(srv);
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto session = connect_session(f.sys, *lnk, logless());
  REQUIRE(session);
  f.track(*session);
  vox::client<service_type> root{caller{session->root}}; // keeps the session up
  scenario_context ctx{f.sys, f.self, root};
  REQUIRE(scenarios().size() == 34);
  check_scenarios(ctx); // those that cut the link: the next test case
  // The same on a virtual connection: the server serves Testbed there too.
  auto conn = f.open(session->actor, {parity::odd, 64});
  REQUIRE(conn);
  vox::client<service_type> virt{caller{*conn}};
  scenario_context vctx{f.sys, f.self, virt};
  check_scenarios(vctx, false, "virtual ");
}

// r[verify retry.channel.recovery.non-idem]
// r[verify retry.channel.volatile.rebinding]
TEST_CASE("the channel retry scenarios pass against a Testbed server that cuts the link after the 20th item",
          "[testbed][tcp][retry]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, cutting_testbed_server(std::make_shared<item_breaker>(20)));
  REQUIRE(srv);
  auto port = (*srv)->port();
  auto lnk = tcp_connect("127.0.0.1", port);
  REQUIRE(lnk);
  auto session = connect_session(f.sys, *lnk, resuming_client(port));
  REQUIRE(session);
  f.track(*session);
  vox::client<service_type> root{caller{session->root}};
  scenario_context ctx{f.sys, f.self, root};
  CHECK(check_scenarios(ctx, true) == 2);
  CHECK(f.info(session->actor).resumes == 2); // one cut per method
  CHECK((*srv)->sessions_started() == 1);
}

TEST_CASE("Testbed edge cases: overflow, division by zero first, lookup ranges, Unicode reverse", "[testbed]") {
  actor_fixture f;
  auto opts = logless();
  opts.root_handler = make_handler();
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), opts);
  vox::client<service_type> tb{caller{pair.client.root}};
  auto min = std::numeric_limits<int64_t>::min();
  auto over = tb.call<m::divide>(f.self, {min, -1}, wait_bound);
  REQUIRE(over);
  CHECK(std::get<0>(over->err()) == math_error::overflow);
  auto zero = tb.call<m::divide>(f.self, {min, 0}, wait_bound);
  REQUIRE(zero);
  CHECK(std::get<0>(zero->err()) == math_error::division_by_zero);
  auto neg = tb.call<m::divide>(f.self, {-7, 2}, wait_bound);
  REQUIRE(neg);
  CHECK(neg->ok() == -3);
  CHECK(std::get<0>(tb.call<m::lookup>(f.self, {0}, wait_bound)->err()) == lookup_error::not_found);
  CHECK(std::get<0>(tb.call<m::lookup>(f.self, {150}, wait_bound)->err()) == lookup_error::access_denied);
  CHECK(tb.call<m::lookup>(f.self, {3}, wait_bound)->ok().name == "Charlie");
  auto rev = tb.call<m::reverse>(f.self, {"h\xc3\xa9llo \xf0\x9f\xa6\x80"}, wait_bound);
  REQUIRE(rev);
  CHECK(rev->ok() == "\xf0\x9f\xa6\x80 oll\xc3\xa9h");
  auto msg = tb.call<m::process_message>(f.self, {tb_message{std::in_place_index<0>, "x"}}, wait_bound);
  REQUIRE(msg);
  CHECK(std::get<0>(msg->ok()) == "processed: x");
}

TEST_CASE("channel scenarios against a server without those methods fail with the call's error", "[testbed]") {
  actor_fixture f;
  // The peer serves nothing: every call is answered Err(UnknownMethod) at once. The
  // scenario must report that, not wait for items or credit that never come.
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), logless());
  vox::client<service_type> root{caller{pair.client.root}};
  scenario_context ctx{f.sys, f.self, root};
  for (const auto& s : scenarios()) {
    if (s.name != "sum_large" && s.name != "generate_large" && s.name != "transform_bidi")
      continue;
    auto failure = s.run(ctx);
    INFO(s.name);
    REQUIRE(failure);
    CHECK(*failure == "expected Ok, got Err (VoxError variant 1)");
  }
}
