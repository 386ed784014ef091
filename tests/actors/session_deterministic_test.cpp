// Session behaviours on CAF's test coordinator: nothing runs until the test says so, so
// frames the peer sends back to back are all queued before the session looks at the
// first one — the orderings a wall-clock test can only hope to hit.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/proxy.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

struct deterministic_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  std::vector<session_actor> sessions;

  static caf::actor_system_config& testing(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  deterministic_fixture()
    : sys{testing(cfg)}, sched{dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())} {}

  ~deterministic_fixture() {
    for (auto& s : sessions)
      caf::anon_send(s, stop_atom::value);
    sched.run();
  }

  session_handle track(session_handle h) {
    sessions.push_back(h.actor);
    return h;
  }
};

/// A session that accepts every virtual connection with an echo handler and serves its
/// root connection with one too; the test is its peer (the initiator, Odd ids).
raw_peer accepting_peer(deterministic_fixture& f) {
  auto opts = serving(echo_handler());
  opts.acceptor = echo_acceptor();
  auto peer = make_raw_peer(f, session_role::acceptor, std::move(opts));
  f.sched.run(); // the session takes its link
  return peer;
}

message call_on(connection_id conn, request_id id, payload args) {
  return message{conn, request_message{id, request_call{7, {}, std::move(args), {}}}};
}

/// The `ret` of the next Message if it is a Response on `conn` to request `id`.
std::optional<payload> response_on(raw_peer& peer, connection_id conn, request_id id) {
  auto m = peer.recv_as<request_message>();
  if (!m || m->first != conn || m->second.id != id)
    return std::nullopt;
  auto* r = std::get_if<request_response>(&m->second.body);
  return r ? std::optional<payload>{r->ret} : std::nullopt;
}

} // namespace

TEST_CASE("an Open and a Call on the new id, queued together, are accepted and answered in wire order",
          "[actors][deterministic]") {
  deterministic_fixture f;
  auto peer = accepting_peer(f);
  peer.send(message{1, connection_open{{parity::odd, 64}, {}}});
  peer.send(call_on(1, 1, payload{5}));
  f.sched.run();
  auto accept = peer.recv_as<connection_accept>();
  REQUIRE(accept);
  CHECK(accept->first == 1);
  CHECK(response_on(peer, 1, 1) == payload{0, 5});
}

// r[verify connection.close.semantics]
TEST_CASE("a Call queued right behind the Close of its connection is dropped and the session goes on",
          "[actors][deterministic]") {
  deterministic_fixture f;
  auto peer = accepting_peer(f);
  peer.send(message{1, connection_open{{parity::odd, 64}, {}}});
  f.sched.run();
  REQUIRE(peer.recv_as<connection_accept>());
  // Behaviour 50: traffic for a connection that is gone is dropped silently.
  peer.send(message{1, connection_close{}});
  peer.send(call_on(1, 1, payload{5}));
  peer.send(call_on(0, 1, payload{6}));
  f.sched.run();
  // The next thing the session says is the root call's answer: nothing for connection 1.
  CHECK(response_on(peer, 0, 1) == payload{0, 6});
}

TEST_CASE("calls queued back to back on two connections are each answered on their own connection",
          "[actors][deterministic]") {
  deterministic_fixture f;
  auto peer = accepting_peer(f);
  peer.send(message{1, connection_open{{parity::odd, 64}, {}}});
  peer.send(message{3, connection_open{{parity::odd, 64}, {}}});
  for (request_id id = 1; id <= 9; id += 2) {
    peer.send(call_on(1, id, payload{static_cast<uint8_t>(id)}));
    peer.send(call_on(3, id, payload{static_cast<uint8_t>(id + 100)}));
  }
  f.sched.run();
  std::map<connection_id, std::vector<payload>> answers;
  int accepts = 0;
  for (int i = 0; i < 12; ++i) {
    auto m = peer.recv();
    REQUIRE(m);
    if (std::holds_alternative<connection_accept>(m->payload)) {
      ++accepts;
      continue;
    }
    auto* rm = std::get_if<request_message>(&m->payload);
    REQUIRE(rm);
    answers[m->connection_id].push_back(std::get<request_response>(rm->body).ret);
  }
  CHECK(accepts == 2);
  CHECK(answers[1] == std::vector<payload>{{0, 1}, {0, 3}, {0, 5}, {0, 7}, {0, 9}});
  CHECK(answers[3] == std::vector<payload>{{0, 101}, {0, 103}, {0, 105}, {0, 107}, {0, 109}});
}

TEST_CASE("an Open on an id of our own parity is rejected without ending the session",
          "[actors][deterministic]") {
  deterministic_fixture f;
  auto peer = accepting_peer(f);
  // The session is the acceptor (Even): id 2 is its own to allocate (behaviour 67).
  peer.send(message{2, connection_open{{parity::odd, 64}, {}}});
  peer.send(call_on(0, 1, payload{1}));
  f.sched.run();
  auto reject = peer.recv_as<connection_reject>();
  REQUIRE(reject);
  CHECK(reject->first == 2);
  CHECK(response_on(peer, 0, 1) == payload{0, 1});
}

TEST_CASE("a Call on an established connection goes straight to its driver and leaves the session idle",
          "[actors][deterministic]") {
  deterministic_fixture f;
  auto peer = accepting_peer(f);
  peer.send(message{1, connection_open{{parity::odd, 64}, {}}});
  CHECK_FALSE(idle(peer.session.actor)); // control goes through the session
  f.sched.run();
  REQUIRE(peer.recv_as<connection_accept>());
  peer.send(call_on(0, 1, payload{1}));
  peer.send(call_on(1, 1, payload{2}));
  CHECK(idle(peer.session.actor));
  f.sched.run();
  CHECK(response_on(peer, 0, 1) == payload{0, 1});
  CHECK(response_on(peer, 1, 1) == payload{0, 2});
}

TEST_CASE("a Call read while a splice of its connection waits for the session goes to the splice",
          "[actors][deterministic][proxy]") {
  deterministic_fixture f;
  auto a = make_raw_peer(f, session_role::acceptor, logless());
  auto b = make_raw_peer(f, session_role::initiator, logless());
  f.sched.run();
  // The splice is in a's session's mailbox before the Call is read (nothing has run):
  // the Call must queue behind it, not reach the root's own driver, which has no handler.
  auto splice = proxy_connections(f.sys, a.session.root, b.session.root);
  REQUIRE(splice);
  a.send(call_on(0, 1, payload{5}));
  f.sched.run();
  auto call = b.recv_as<request_message>();
  REQUIRE(call);
  CHECK(call->second.id == 1);
  REQUIRE(std::holds_alternative<request_call>(call->second.body));
  CHECK(std::get<request_call>(call->second.body).args == payload{5});
  splice->stop();
  f.sched.run();
}

TEST_CASE("a link's input hands a connection's messages to its driver only once the session handled all it was given",
          "[actors][deterministic]") {
  deterministic_fixture f;
  // The int is a spawn argument because CAF 0.17 function actors spawned without any hit UB.
  auto driver = caf::actor_cast<driver_actor>(
    f.sys.spawn([](caf::event_based_actor*, int) -> caf::behavior { return {[](int) {}}; }, 0));
  detail::inbound_routes routes;
  routes.add(3, driver);
  CHECK(routes.find(3, 0) == driver);
  CHECK_FALSE(routes.find(5, 0));
  // One Message (say, the Close of connection 3) given and not yet handled: wait for it.
  CHECK_FALSE(routes.find(3, 1));
  routes.handled();
  CHECK(routes.find(3, 1) == driver);
  routes.remove(3);
  CHECK_FALSE(routes.find(3, 1));
  routes.add(3, driver);
  routes.clear();
  CHECK_FALSE(routes.find(3, 1));
  caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
  f.sched.run();
}

TEST_CASE("a handler's immediate answer goes out within the driver's turn that ran the Call",
          "[actors][deterministic]") {
  deterministic_fixture f;
  auto peer = accepting_peer(f);
  peer.send(call_on(0, 1, payload{7}));
  // The Call went straight to the driver; one message of one job runs it. Sent through
  // the driver's mailbox, the answer would need a second.
  REQUIRE(f.sched.try_run_once());
  CHECK(response_on(peer, 0, 1) == payload{0, 7});
  f.sched.run();
}

TEST_CASE("a handler that answers an earlier call's sink and its own gets both answers out",
          "[actors][deterministic]") {
  deterministic_fixture f;
  auto kept = std::make_shared<std::vector<reply_sink>>();
  auto peer = make_raw_peer(f, session_role::acceptor, serving([kept](incoming_call in, reply_sink sink) {
                              if (in.args == payload{1}) {
                                kept->push_back(std::move(sink)); // answered by the next call
                                return;
                              }
                              for (auto& earlier : *kept)
                                earlier.reply(payload{0, 1});
                              sink.reply(payload{0, 2});
                            }));
  f.sched.run();
  peer.send(call_on(0, 1, payload{1}));
  peer.send(call_on(0, 3, payload{2}));
  f.sched.run();
  // Call 3's own answer leaves when its handler returns; call 1's, given on call 3's
  // turn but not for call 3, is a message to the driver and follows.
  CHECK(response_on(peer, 0, 3) == payload{0, 2});
  CHECK(response_on(peer, 0, 1) == payload{0, 1});
}

TEST_CASE("a handler that answers and then throws still gets its answer out", "[actors][deterministic]") {
  deterministic_fixture f;
  auto peer = make_raw_peer(f, session_role::acceptor, serving([](incoming_call, reply_sink sink) {
                              sink.reply(payload{0, 9});
                              throw std::runtime_error("after the answer");
                            }));
  f.sched.run();
  peer.send(call_on(0, 1, payload{}));
  f.sched.run();
  CHECK(response_on(peer, 0, 1) == payload{0, 9});
}
