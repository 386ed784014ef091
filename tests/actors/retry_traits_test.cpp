// What a method's retry traits change on the serving side: a persistent method
// (`vox::persist`, Rust's `#[vox(persist)]`) runs to its answer whatever the caller does;
// an idempotent one (`vox::idem`) whose handler let go runs again on a repeat. The test is
// the caller, on the raw wire, so that it sees every Response the session sends, and
// none it should not.
#include <condition_variable>
#include <deque>
#include <mutex>

#include <catch2/catch.hpp>

#include "actors/operation_store.hpp"
#include "actors/service.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using keep = persist<method<"keep", uint32_t(uint32_t)>>;
using plain = method<"plain", uint32_t(uint32_t)>;
using again = idem<method<"again", uint32_t(uint32_t)>>;
using durable = service<"Durable", keep, plain, again>;

static_assert(keep::persistent && !keep::idempotent);
static_assert(idem<keep>::persistent && idem<keep>::idempotent && persist<idem<plain>>::idempotent);

/// Holds the responders of `keep` until the test answers or drops them; `plain` answers at once.
struct held_runs {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<responder<durable, keep>> runs;
  int started = 0;
  int again_runs = 0;

  call_handler handler() {
    service_dispatcher<durable> d;
    d.on<keep>([this](uint32_t, responder<durable, keep> r) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        runs.push_back(std::move(r));
        ++started;
      }
      cv.notify_all();
    });
    d.on<plain>([](uint32_t v, responder<durable, plain> r) { r.ok(v); });
    d.on<again>([this](uint32_t v, responder<durable, again> r) {
      std::lock_guard<std::mutex> guard{mtx};
      if (++again_runs > 1)
        r.ok(v); // the first run lets go
    });
    return d.handler();
  }

  std::optional<responder<durable, keep>> take() {
    std::unique_lock<std::mutex> guard{mtx};
    if (!cv.wait_for(guard, wait_bound, [&] { return !runs.empty(); }))
      return std::nullopt;
    auto r = std::move(runs.front());
    runs.pop_front();
    return r;
  }
};

message call(request_id id, method_id_t method, uint32_t arg, vox::metadata md = {}) {
  return message{0, request_message{id, request_call{method, std::move(md), payload{encode(std::tuple{arg})}, {}}}};
}

vox::metadata operation(uint64_t op) { return {metadata_entry{operation_id_key, op, metadata_flags::none}}; }

/// The `Ok` value of a Response to `keep` or `plain`, or nullopt.
std::optional<uint32_t> ok_of(const seen_response& s) {
  auto r = client<durable>::decode_result<keep>({s.response.metadata, s.response.ret, s.response.schemas});
  if (!r || !r->is_ok())
    return std::nullopt;
  return r->ok();
}

/// Nothing else is on its way: the session answers a Ping before anything later.
void expect_nothing_pending(raw_peer& peer) {
  peer.send(message{0, ping{11}});
  auto m = peer.recv();
  REQUIRE(m);
  REQUIRE(std::holds_alternative<pong>(m->payload));
}

raw_peer serving_peer(actor_fixture& f, held_runs& runs) {
  auto opts = serving(runs.handler());
  opts.retry = true; // the operation store serves calls with operation ids
  return make_raw_peer(f, session_role::acceptor, opts);
}

const auto keep_id = durable::id<keep>();
const auto plain_id = durable::id<plain>();
const auto again_id = durable::id<again>();

} // namespace

// r[verify retry.cancel.explicit.persist]
TEST_CASE("a Cancel does not stop a persistent method: its handler is not told, and its answer is the "
          "call's one response",
          "[actors][retry]") {
  actor_fixture f;
  held_runs runs;
  auto peer = serving_peer(f, runs);
  peer.send(call(1, keep_id, 123));
  auto r1 = runs.take();
  REQUIRE(r1);
  peer.send(message{0, request_message{1, request_cancel{}}});
  // Calls are handled in wire order: the answer to 3 comes after whatever the Cancel of 1 caused.
  peer.send(call(3, plain_id, 7));
  auto first = next_response(peer);
  REQUIRE(first);
  CHECK(first->id == 3);
  CHECK_FALSE(r1->sink().cancelled());
  r1->ok(123);
  auto answer = next_response(peer);
  REQUIRE(answer);
  CHECK(answer->id == 1);
  CHECK(ok_of(*answer) == 123u);
  expect_nothing_pending(peer);
}

// r[verify rpc.response.one-per-request]
TEST_CASE("a call waiting for an earlier run of its operation is answered Cancelled when cancelled, and the "
          "run's owner still gets the answer",
          "[actors][retry]") {
  actor_fixture f;
  held_runs runs;
  auto peer = serving_peer(f, runs);
  peer.send(call(1, keep_id, 5, operation(77)));
  auto r1 = runs.take();
  REQUIRE(r1);
  peer.send(call(3, keep_id, 5, operation(77))); // attaches to the run of 1
  peer.send(message{0, request_message{3, request_cancel{}}});
  auto cancelled = next_response(peer);
  REQUIRE(cancelled);
  CHECK(cancelled->id == 3);
  CHECK(cancelled->response.ret == cancelled_response());
  r1->ok(5);
  auto answer = next_response(peer);
  REQUIRE(answer);
  CHECK(answer->id == 1);
  CHECK(ok_of(*answer) == 5u);
  expect_nothing_pending(peer); // no second response to 3
  std::lock_guard<std::mutex> guard{runs.mtx};
  CHECK(runs.started == 1);
}

// r[verify retry.cancel.implicit.persist]
TEST_CASE("a persistent method's handler that lets go without answering gives Indeterminate, and so does a "
          "repeat of its operation",
          "[actors][retry]") {
  actor_fixture f;
  held_runs runs;
  auto peer = serving_peer(f, runs);
  bool with_operation = GENERATE(false, true);
  INFO("operation id: " << with_operation);
  auto md = with_operation ? operation(5) : vox::metadata{};
  peer.send(call(1, keep_id, 9, md));
  {
    auto r1 = runs.take();
    REQUIRE(r1);
  } // dropped
  auto answer = next_response(peer);
  REQUIRE(answer);
  CHECK(answer->id == 1);
  CHECK(answer->response.ret == indeterminate_response());
  if (with_operation) {
    peer.send(call(3, keep_id, 9, md));
    auto repeat = next_response(peer);
    REQUIRE(repeat);
    CHECK(repeat->id == 3);
    CHECK(repeat->response.ret == indeterminate_response());
    std::lock_guard<std::mutex> guard{runs.mtx};
    CHECK(runs.started == 1);
  }
  expect_nothing_pending(peer);
}

TEST_CASE("a waiter detached from an operation no longer gets its answer; owners cannot be detached", "[retry]") {
  detail::operation_store store{{}};
  using verdict = detail::operation_store::verdict;
  REQUIRE(store.admit(7, 1, 42) == verdict::start);
  REQUIRE(store.admit(7, 3, 42) == verdict::attached);
  REQUIRE(store.admit(7, 5, 42) == verdict::attached);
  CHECK_FALSE(store.detach(1));
  CHECK(store.detach(3));
  CHECK_FALSE(store.detach(3));
  CHECK(store.seal(1, {42, {}, payload{byte_buffer{0, 1}}, nullptr}) == std::vector<request_id>{5});
  CHECK_FALSE(store.detach(5));
}

// r[verify retry.duplicate.released.idem]
TEST_CASE("an idempotent operation whose handler let go is answered Cancelled and runs again on a repeat",
          "[actors][retry]") {
  actor_fixture f;
  held_runs runs;
  auto peer = serving_peer(f, runs);
  peer.send(call(1, again_id, 4, operation(8)));
  auto first = next_response(peer);
  REQUIRE(first);
  CHECK(first->id == 1);
  CHECK(first->response.ret == cancelled_response());
  // Not sealed: a repeat runs the handler again instead of replaying the Cancelled.
  peer.send(call(3, again_id, 4, operation(8)));
  auto repeat = next_response(peer);
  REQUIRE(repeat);
  CHECK(repeat->id == 3);
  CHECK(ok_of(*repeat) == 4u);
  std::lock_guard<std::mutex> guard{runs.mtx};
  CHECK(runs.again_runs == 2);
}
