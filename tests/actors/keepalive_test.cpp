// Keepalive (session-behaviours.md 60–66): deterministic time for the monitor itself,
// real links for its effect on sessions.
#include <catch2/catch.hpp>

#include <caf/scheduler/test_coordinator.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/keepalive_actor.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// What the keepalive asked of its (fake) session.
struct recorded {
  std::vector<uint64_t> pings;
  std::vector<uint64_t> timeouts;
};

keepalive_target::behavior_type fake_session(keepalive_target::pointer, std::shared_ptr<recorded> rec) {
  return {
    [rec](caf::ping_atom, uint64_t nonce) { rec->pings.push_back(nonce); },
    [rec](keepalive_timeout_msg& m) { rec->timeouts.push_back(m.nonce); },
  };
}

struct deterministic_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

  static caf::actor_system_config& testing(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  deterministic_fixture()
    : sys{testing(cfg)}, sched{dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())} {}

  void advance(std::chrono::milliseconds d) {
    sched.advance_time(d);
    sched.run();
  }
};

} // namespace

// r[verify session.keepalive]
TEST_CASE("the keepalive pings every interval and waits for the matching Pong", "[actors][keepalive]") {
  deterministic_fixture f;
  auto rec = std::make_shared<recorded>();
  auto session = f.sys.spawn(fake_session, rec);
  auto ka = f.sys.spawn(keepalive_behavior, session, keepalive_options{100ms, 300ms});
  f.sched.run();
  f.advance(99ms);
  CHECK(rec->pings.empty());
  f.advance(1ms);
  REQUIRE(rec->pings == std::vector<uint64_t>{1}); // behaviour 61: the first nonce is 1
  // A Pong with another nonce does not count (62).
  caf::anon_send(ka, caf::pong_atom::value, uint64_t{7});
  f.sched.run();
  f.advance(299ms);
  CHECK(rec->timeouts.empty());
  caf::anon_send(ka, caf::pong_atom::value, uint64_t{1});
  f.sched.run();
  // The next Ping is one interval after the Pong, not after the previous Ping.
  f.advance(99ms);
  CHECK(rec->pings.size() == 1);
  f.advance(1ms);
  CHECK(rec->pings == std::vector<uint64_t>{1, 2});
  CHECK(rec->timeouts.empty());
  caf::anon_send_exit(ka, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
  f.sched.run();
}

// The monitor watches the session; a stopped one must not stay in the session's monitor
// entries (a weak reference holding its whole allocation) for the session's lifetime.
TEST_CASE("a stopped keepalive is freed while the session it watched goes on", "[actors][keepalive]") {
  deterministic_fixture f;
  auto rec = std::make_shared<recorded>();
  auto session = f.sys.spawn(fake_session, rec);
  caf::actor_addr stopped;
  {
    auto ka = f.sys.spawn(keepalive_behavior, session, keepalive_options{100ms, 300ms});
    f.sched.run();
    stopped = ka.address();
    caf::anon_send_exit(ka, caf::exit_reason::user_shutdown);
    f.sched.run();
  }
  f.advance(100ms); // the clock lets go of its pending tick
  CHECK(only_this_reference_left(stopped));
  caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
  f.sched.run();
}

TEST_CASE("a missing Pong ends with a timeout exactly at the deadline", "[actors][keepalive]") {
  deterministic_fixture f;
  auto rec = std::make_shared<recorded>();
  auto session = f.sys.spawn(fake_session, rec);
  f.sys.spawn(keepalive_behavior, session, keepalive_options{50ms, 3000ms});
  f.sched.run();
  f.advance(50ms);
  REQUIRE(rec->pings == std::vector<uint64_t>{1});
  f.advance(2999ms);
  CHECK(rec->timeouts.empty());
  CHECK(rec->pings.size() == 1); // no new Ping while one is outstanding (63)
  f.advance(1ms);
  CHECK(rec->timeouts == std::vector<uint64_t>{1});
  caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
  f.sched.run();
}

TEST_CASE("a session whose peer never answers Pings ends on the keepalive timeout", "[actors][keepalive]") {
  actor_fixture f;
  auto opts = logless();
  opts.keepalive = keepalive_options{20ms, 50ms};
  auto peer = make_raw_peer(f, session_role::initiator, opts);
  caller root{peer.session.root};
  auto p = peer.recv_as<ping>();
  REQUIRE(p);
  CHECK(p->first == 0);
  auto reason = f.wait_down(peer.session.actor);
  REQUIRE(reason);
  CHECK(is(*reason, errc::timeout));
  // Pending calls learn that the session is gone.
  auto r = f.call(root, 1, payload{});
  CHECK_FALSE(r);
}

TEST_CASE("a session whose peer answers Pings stays alive", "[actors][keepalive]") {
  actor_fixture f;
  auto opts = logless();
  opts.keepalive = keepalive_options{10ms, 200ms};
  auto peer = make_raw_peer(f, session_role::initiator, opts);
  // Twenty full ping cycles: far longer than one pong timeout in total.
  for (uint64_t i = 1; i <= 20; ++i) {
    auto p = peer.recv_as<ping>();
    REQUIRE(p);
    CHECK(p->second.nonce == i);
    peer.send(message{0, pong{p->second.nonce}});
  }
  CHECK(f.info(peer.session.actor).active_connections == 1);
}

TEST_CASE("keepalive with a zero duration is disabled with a log line", "[actors][keepalive]") {
  actor_fixture f;
  auto opts = logless();
  auto lines = std::make_shared<std::promise<std::string>>();
  opts.log = [lines](const std::string& l) { lines->set_value(l); };
  opts.keepalive = keepalive_options{0ms, 100ms};
  auto peer = make_raw_peer(f, session_role::initiator, opts);
  auto fut = lines->get_future();
  REQUIRE(fut.wait_for(wait_bound) == std::future_status::ready);
  CHECK(fut.get().find("keepalive disabled") != std::string::npos);
}

TEST_CASE("two sessions with keepalive over TCP keep each other alive", "[actors][keepalive][tcp]") {
  actor_fixture f;
  auto opts = logless();
  opts.keepalive = keepalive_options{5ms, 500ms};
  opts.root_handler = echo_handler();
  auto pair = make_session_pair(f, tcp_link_pair(), opts, opts);
  caller root{pair.client.root};
  // Calls keep succeeding while many keepalive rounds go by underneath.
  for (int i = 0; i < 200; ++i) {
    auto r = f.call(root, 1, payload{1});
    REQUIRE(r);
  }
  CHECK(f.info(pair.client.actor).active_connections == 1);
  CHECK(f.info(pair.server.actor).active_connections == 1);
}

TEST_CASE("a session whose keepalive monitor dies ends instead of going on unchecked", "[actors][keepalive]") {
  actor_fixture f;
  auto opts = logless();
  opts.keepalive = keepalive_options{10s, 10s};
  auto peer = make_raw_peer(f, session_role::initiator, opts);
  auto info = f.info(peer.session.actor);
  REQUIRE(info.keepalive);
  caf::anon_send_exit(info.keepalive, caf::exit_reason::kill);
  auto reason = f.wait_down(peer.session.actor);
  REQUIRE(reason);
  CHECK(is(*reason, errc::internal));
  CHECK(peer.sees_eof());
}
