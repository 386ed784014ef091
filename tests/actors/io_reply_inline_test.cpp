// Where a call's continuation runs (io_inline, actors/io.hpp): by default on the I/O thread
// that read the Response, for that one message only; and a blocking vox call made on an
// I/O thread fails at once instead of stopping the loop it would wait for.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "actors/io.hpp"
#include "support/session_fixture.hpp"
#include "transport/memory_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

constexpr int unset = -1;

/// What the probe actor saw: 1 if on an I/O thread, 0 if not, unset until it ran.
struct observed {
  std::atomic<int> continuation{unset};
  std::atomic<int> next_message{unset};
  std::atomic<int> blocking_refused{unset};
};

/// Holds every call until `release`, which answers each with its echo: a Response then
/// reaches a caller that is known to be idle, the case io_inline::reply_handlers is about.
struct held_calls {
  std::mutex mtx;
  std::vector<std::pair<reply_sink, payload>> held;

  call_handler handler() {
    return [this](incoming_call in, reply_sink sink) {
      std::lock_guard<std::mutex> guard{mtx};
      held.emplace_back(std::move(sink), std::move(in.args));
    };
  }

  size_t count() {
    std::lock_guard<std::mutex> guard{mtx};
    return held.size();
  }

  void release() {
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& [sink, args] : held) {
      payload ret{0x00};
      ret.insert(ret.end(), args.begin(), args.end());
      sink.reply(std::move(ret));
    }
    held.clear();
  }
};

/// Calls method 7 on `c` from an event-based actor. The continuation records its thread,
/// tries a blocking connect_session if it is on an I/O thread, and sends the actor one
/// more message, which records its thread too.
caf::actor probe_call(caf::actor_system& sys, const caller& c, std::shared_ptr<observed> obs) {
  // The int is a spawn argument because CAF 0.17 function actors spawned without any hit UB.
  return sys.spawn([obs, driver = c.driver()](caf::event_based_actor* self, int) -> caf::behavior {
    self->request(driver, wait_bound, call_atom::value, outgoing_call{7, {}, payload{1}})
      .then(
        [=](call_response&) {
          obs->continuation = io_loop::on_io_thread() ? 1 : 0;
          // Elsewhere this connect would wait for a handshake that never comes.
          if (io_loop::on_io_thread()) {
            auto links = make_memory_link_pair();
            auto s = connect_session(self->system(), links.first, logless());
            obs->blocking_refused = !s && is(s.error(), errc::invalid_request) ? 1 : 0;
          }
          self->send(self, caf::ok_atom::value);
        },
        [=](caf::error& e) {
          UNSCOPED_INFO("the call failed: " << describe(e));
          self->quit();
        });
    return {[=](caf::ok_atom) {
      obs->next_message = io_loop::on_io_thread() ? 1 : 0;
      self->quit();
    }};
  }, 0);
}

/// A client session over TCP on a reactor of its own with `client_policy`, or on the
/// default reactor without one; the server holds calls in `calls`.
session_pair tcp_sessions(actor_fixture& f, held_calls& calls, std::optional<io_inline> client_policy = std::nullopt) {
  auto client = logless();
  if (client_policy)
    client.io = io_reactor::start(f.sys, io_config(1, *client_policy));
  return make_session_pair(f, tcp_link_pair(), client, serving(calls.handler()));
}

/// A client session over TCP (its reactor's policy `client_policy`, or the default reactor
/// without one) whose server holds calls, and one `probe_call` on it.
struct probe_run {
  actor_fixture f;
  held_calls calls;
  session_pair pair;
  caller c; // the session lives while its root has a caller
  std::shared_ptr<observed> obs = std::make_shared<observed>();

  explicit probe_run(std::optional<io_inline> client_policy = std::nullopt)
    : pair(tcp_sessions(f, calls, client_policy)), c{pair.client.root} {}

  /// Runs the probe and answers its call once the probe and the client's driver are idle
  /// (a driver still finishing the Call on a CAF worker would take the Response there);
  /// true once the probe's second message has run.
  bool run() {
    auto probe = probe_call(f.sys, c, obs);
    if (!eventually([&] { return calls.count() == 1 && idle(probe) && idle(c.driver()); }))
      return false;
    calls.release();
    return eventually([&] { return obs->next_message != unset; });
  }
};

} // namespace

TEST_CASE("by default a call's continuation runs on the I/O thread that read its Response, for that "
          "message only",
          "[actors][io]") {
  probe_run p;
  REQUIRE(p.run());
  CHECK(p.obs->continuation == 1);
  CHECK(p.obs->blocking_refused == 1);
  // The actor's next message went to the CAF scheduler.
  CHECK(p.obs->next_message == 0);
}

TEST_CASE("with io_inline::vox_actors a call's continuation runs on a CAF worker", "[actors][io]") {
  probe_run p{io_inline::vox_actors};
  REQUIRE(p.run());
  CHECK(p.obs->continuation == 0);
  CHECK(p.obs->next_message == 0);
}

TEST_CASE("a blocking vox call from a reply continuation fails at once and the I/O loop goes on",
          "[actors][io]") {
  probe_run p{io_inline::reply_handlers};
  REQUIRE(p.run());
  CHECK(p.obs->continuation == 1);
  CHECK(p.obs->blocking_refused == 1);
  // The loop still serves: a call made now gets its answer.
  auto answer = p.f.async([&](caf::scoped_actor& self) { return actor_fixture::call_with(self, p.c, 7, payload{5}); });
  REQUIRE(eventually([&] { return p.calls.count() == 1; }));
  p.calls.release();
  auto r = answer.get();
  REQUIRE(r);
  CHECK(r->ret == payload{0, 5});
}

TEST_CASE("a blocking vox call from a handler on an I/O thread fails at once and the session goes on",
          "[actors][io]") {
  actor_fixture f;
  // Answers {0, on an I/O thread, connect_session refused}. A handler runs on a CAF worker
  // when its driver was busy there as the Call came in (e.g. the session was still
  // starting); it skips the connect then, which would wait for a handshake that never comes.
  call_handler handler = [](incoming_call in, reply_sink sink) {
    uint8_t on_io = io_loop::on_io_thread() ? 1 : 0;
    uint8_t refused = 0;
    if (on_io) {
      auto links = make_memory_link_pair();
      auto s = connect_session(*in.system, links.first, logless());
      refused = !s && is(s.error(), errc::invalid_request) ? 1 : 0;
    }
    sink.reply(payload{0, on_io, refused});
  };
  auto pair = make_session_pair(f, tcp_link_pair(), logless(), serving(handler));
  caller c{pair.client.root};
  int on_io = 0;
  for (int i = 0; i < 50 && on_io < 2; ++i) {
    auto r = f.call(c, 7, payload{});
    REQUIRE(r);
    REQUIRE(r->ret.size() == 3);
    if (r->ret[1] == 1) {
      ++on_io;
      CHECK(r->ret[2] == 1);
    }
  }
  CHECK(on_io == 2);
}
