// Operation ids and retry (session-behaviours.md §2.9, §3.8): a call the broken link may
// have lost is sent again after the resume, and the peer's operation store makes sure it
// runs once.
#include <condition_variable>
#include <mutex>

#include <catch2/catch.hpp>

#include "actors/operation_store.hpp"
#include "actors/service.hpp"
#include "support/lossy_link.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using echo = method<"echo", std::string(std::string)>;
using echo_again = idem<method<"echo_again", std::string(std::string)>>; // safe to run twice
using echo_service = service<"Echo", echo, echo_again>;

/// An Echo service whose answers wait until the test releases them.
struct held_echoes {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::pair<std::string, responder<echo_service, echo>>> calls;
  std::vector<vox::metadata> seen_metadata;
  int runs = 0;

  call_handler handler() {
    service_dispatcher<echo_service> d;
    d.on<echo>([this](std::string s, responder<echo_service, echo> r) {
      std::lock_guard<std::mutex> guard{mtx};
      seen_metadata.push_back(r.call_metadata());
      calls.emplace_back(std::move(s), std::move(r));
      ++runs;
      cv.notify_all();
    });
    d.on<echo_again>([this](std::string s, responder<echo_service, echo_again> r) {
      std::lock_guard<std::mutex> guard{mtx};
      idem_calls.emplace_back(std::move(s), std::move(r));
      ++runs;
      cv.notify_all();
    });
    return d.handler();
  }

  std::vector<std::pair<std::string, responder<echo_service, echo_again>>> idem_calls;

  /// The handlers let go of every held call without answering.
  void drop() {
    std::lock_guard<std::mutex> guard{mtx};
    calls.clear();
    idem_calls.clear();
  }

  bool wait_for(int n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, wait_bound, [&] { return runs >= n; });
  }

  void release() {
    std::vector<std::pair<std::string, responder<echo_service, echo>>> taken;
    {
      std::lock_guard<std::mutex> guard{mtx};
      taken.swap(calls);
    }
    for (auto& [s, r] : taken)
      r.ok(s);
    std::vector<std::pair<std::string, responder<echo_service, echo_again>>> again;
    {
      std::lock_guard<std::mutex> guard{mtx};
      again.swap(idem_calls);
    }
    for (auto& [s, r] : again)
      r.ok(s);
  }
};

session_options with_retry(session_options o, std::shared_ptr<session_registry> registry = nullptr) {
  o.resumable = true;
  o.retry = true;
  o.registry = std::move(registry);
  return o;
}

/// The raw Response to an echo (method M) of `text` with `md`, made on its own thread.
template <class M = echo>
std::future<caf::expected<call_response>> echo_async(actor_fixture& f, const caller& c, std::string text,
                                                     vox::metadata md = {}) {
  return f.async([c, text, md](caf::scoped_actor& a) {
    client<echo_service> cl{c};
    caf::expected<call_response> out = caf::error{};
    auto call = cl.make_call<M>({text}, call_options{md, 0});
    a->request(c.driver(), wait_bound, call_atom::value, std::move(*call))
      .receive([&](call_response& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  });
}

std::string echoed(const caf::expected<call_response>& r) {
  if (!r)
    return "error: " + describe(r.error());
  auto res = client<echo_service>::decode_result<echo>(*r);
  if (!res || !res->is_ok())
    return "not ok";
  return res->ok();
}

struct retry_pair {
  actor_fixture& f;
  std::shared_ptr<session_registry> registry = std::make_shared<session_registry>();
  session_options client_opts;
  session_options server_opts;
  std::shared_ptr<lossy_link> client_link;
  std::shared_ptr<lossy_link> server_link;
  std::shared_ptr<log_recorder> client_log;
  std::shared_ptr<log_recorder> server_log;
  size_t breaks = 0;
  session_pair pair;

  retry_pair(actor_fixture& fx, call_handler handler, bool retry = true) : f(fx) {
    client_opts = retry ? with_retry(logless()) : logless();
    client_opts.resumable = true;
    server_opts = retry ? with_retry(serving(std::move(handler)), registry) : serving(std::move(handler));
    server_opts.resumable = true;
    server_opts.registry = registry;
    client_log = log_recorder::attach(client_opts);
    server_log = log_recorder::attach(server_opts);
    auto links = make_memory_link_pair();
    client_link = std::make_shared<lossy_link>(links.first);
    server_link = std::make_shared<lossy_link>(links.second);
    pair = make_session_pair(f, {client_link, server_link}, client_opts, server_opts);
  }

  /// Breaks the link under both sessions and resumes them on a fresh one.
  void break_and_resume() {
    break_link();
    resume();
  }

  void break_link() {
    client_link->abort();
    ++breaks;
    REQUIRE(client_log->wait_for("link lost", breaks));
    REQUIRE(server_log->wait_for("link lost", breaks));
  }

  void resume() {
    auto links = make_memory_link_pair();
    auto server = std::async(std::launch::async, [&] { return accept_session(f.sys, links.second, server_opts); });
    REQUIRE(resume_session(f.sys, pair.client.actor, links.first, client_opts));
    REQUIRE(server.get());
  }
};

} // namespace

TEST_CASE("the operation store starts, attaches, replays, forgets and evicts as the retry rules say", "[retry]") {
  using verdict = detail::operation_store::verdict;
  detail::operation_store store{{2, 1u << 20}};
  // r[verify retry.duplicate.live.attach]
  CHECK(store.admit(7, 1, 100) == verdict::start);
  CHECK(store.admit(7, 1, 100) == verdict::duplicate);
  CHECK(store.admit(7, 3, 100) == verdict::attached);
  CHECK(store.admit(7, 5, 200) == verdict::conflict);
  auto waiters = store.seal(1, {100, {}, payload{0x00, 0x2a}, nullptr});
  CHECK(waiters == std::vector<request_id>{3});
  // r[verify retry.duplicate.sealed]
  CHECK(store.admit(7, 9, 100) == verdict::replay);
  REQUIRE(store.sealed(7));
  CHECK(store.sealed(7)->ret == payload{0x00, 0x2a});
  CHECK(store.seal(9, {100, {}, payload{0x00}, nullptr}).empty()); // not an owner: no change
  CHECK(store.sealed(7)->ret == payload{0x00, 0x2a});
  // A cancelled owner is forgotten with its waiters; the id may run again.
  CHECK(store.admit(8, 11, 100) == verdict::start);
  CHECK(store.admit(8, 13, 100) == verdict::attached);
  CHECK(store.forget(11) == std::vector<request_id>{13});
  CHECK(store.admit(8, 15, 100) == verdict::start);
  // Bounded: beyond two sealed answers the oldest goes, and its id is answered
  // Indeterminate rather than run again (r[verify retry.gc.fail-closed]).
  store.seal(15, {100, {}, payload{0x00}, nullptr});
  CHECK(store.admit(10, 17, 100) == verdict::start);
  store.seal(17, {100, {}, payload{0x00}, nullptr});
  CHECK(store.sealed_count() == 2);
  CHECK(store.admit(7, 19, 100) == verdict::indeterminate);
  CHECK(store.live() == 0);
}

TEST_CASE("the store's bytes are bounded: large answers evict older ones", "[retry]") {
  detail::operation_store store{{1000, 64 * 1024}};
  for (uint64_t op = 1; op <= 100; ++op) {
    REQUIRE(store.admit(op, op * 2 + 1, 1) == detail::operation_store::verdict::start);
    store.seal(op * 2 + 1, {1, {}, payload(16 * 1024, 0x01), nullptr});
    CHECK(store.sealed_bytes() <= 64 * 1024);
  }
  CHECK(store.sealed_count() < 4);
}

// r[verify retry.reconnect.session-resume.evaluate]
// r[verify retry.duplicate.sealed]
TEST_CASE("a call whose Response the broken link lost is answered after the resume from the store; "
          "the handler ran once and the replay carries schemas",
          "[actors][retry]") {
  actor_fixture f;
  held_echoes held;
  retry_pair p{f, held.handler()};
  caller root{p.pair.client.root};
  auto pending = echo_async(f, root, "once");
  REQUIRE(held.wait_for(1));
  // The operation id went out (the peer said supports_retry).
  REQUIRE(operation_id_of(held.seen_metadata.at(0)));

  p.server_link->swallow(); // the network goes; the answer is written into the void
  held.release();
  REQUIRE(p.server_link->wait_swallowed(1, wait_bound));
  p.break_and_resume();

  REQUIRE(pending.wait_for(wait_bound) == std::future_status::ready);
  auto r = pending.get();
  CHECK(echoed(r) == "once");
  REQUIRE(r);
  CHECK_FALSE(r->schemas.empty()); // the first answer on the new link carries them
  CHECK(held.runs == 1);
}

TEST_CASE("a call whose Call the broken link lost is sent again after the resume and runs once", "[actors][retry]") {
  actor_fixture f;
  held_echoes held;
  retry_pair p{f, held.handler()};
  caller root{p.pair.client.root};
  p.client_link->swallow();
  auto pending = echo_async(f, root, "lost");
  REQUIRE(p.client_link->wait_swallowed(1, wait_bound));
  CHECK(held.runs == 0);
  p.break_and_resume();
  REQUIRE(held.wait_for(1));
  held.release();
  REQUIRE(pending.wait_for(wait_bound) == std::future_status::ready);
  CHECK(echoed(pending.get()) == "lost");
  CHECK(held.runs == 1);
}

// r[verify retry.duplicate.live.attach]
TEST_CASE("two concurrent calls with one operation id both get the one answer; the handler runs once",
          "[actors][retry]") {
  actor_fixture f;
  held_echoes held;
  retry_pair p{f, held.handler()};
  caller root{p.pair.client.root};
  vox::metadata md{metadata_entry{operation_id_key, uint64_t{99}, metadata_flags::none}};
  auto first = echo_async(f, root, "same", md);
  REQUIRE(held.wait_for(1));
  auto second = echo_async(f, root, "same", md);
  // Calls on a connection are handled in order: once the handler sees this one, the
  // second was admitted, and it was attached to the first instead of run.
  auto marker = echo_async(f, root, "marker");
  REQUIRE(held.wait_for(2));
  held.release();
  CHECK(echoed(first.get()) == "same");
  CHECK(echoed(second.get()) == "same");
  CHECK(echoed(marker.get()) == "marker");
  CHECK(held.runs == 2); // "same" once, "marker" once
  // And a third, after the answer, is a replay.
  CHECK(echoed(echo_async(f, root, "same", md).get()) == "same");
  CHECK(held.runs == 2);
}

TEST_CASE("without retry on both sides calls carry no operation id and nothing is sent again",
          "[actors][retry]") {
  actor_fixture f;
  held_echoes held;
  retry_pair p{f, held.handler(), false};
  caller root{p.pair.client.root};
  auto pending = echo_async(f, root, "plain");
  REQUIRE(held.wait_for(1));
  CHECK_FALSE(operation_id_of(held.seen_metadata.at(0)));
  held.release();
  CHECK(echoed(pending.get()) == "plain");
}

// r[verify retry.duplicate.released.idem]
// r[verify retry.duplicate.released.non-idem]
TEST_CASE("a handler that lets go of a call during a break: an idempotent method runs again after the resume, "
          "any other answers Indeterminate",
          "[actors][retry]") {
  bool idempotent = GENERATE(false, true);
  INFO("idempotent: " << idempotent);
  actor_fixture f;
  held_echoes held;
  retry_pair p{f, held.handler()};
  caller root{p.pair.client.root};
  auto pending = idempotent ? echo_async<echo_again>(f, root, "again") : echo_async<echo>(f, root, "again");
  REQUIRE(held.wait_for(1));
  p.break_link();
  held.drop(); // released while the link is down: nothing goes out
  p.resume();  // the caller sends the call again, and the store decides
  if (idempotent) {
    REQUIRE(held.wait_for(2));
    held.release();
  }
  REQUIRE(pending.wait_for(wait_bound) == std::future_status::ready);
  auto r = pending.get();
  REQUIRE(r);
  auto res = client<echo_service>::decode_result<echo>(*r);
  REQUIRE(res);
  if (idempotent) {
    REQUIRE(res->is_ok());
    CHECK(res->ok() == "again");
    CHECK(held.runs == 2);
  } else {
    REQUIRE_FALSE(res->is_ok());
    CHECK(std::holds_alternative<indeterminate>(res->err()));
    CHECK(held.runs == 1);
  }
}

namespace {

using generate = idem<method<"generate", void(uint32_t, tx<int32_t>)>>;
using generator_service = service<"Generator", generate>;

/// Records the channel id each run of `generate` sends on. The first run sends nothing
/// and never answers (the link breaks under it); later runs send 0..n-1 and answer.
struct generator_runs {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<channel_id> ids;
  std::vector<std::pair<tx<int32_t>, responder<generator_service, generate>>> stuck;

  call_handler handler() {
    service_dispatcher<generator_service> d;
    d.on<generate>([this](caf::event_based_actor* self, uint32_t n, tx<int32_t> out,
                          responder<generator_service, generate> r) {
      std::unique_lock<std::mutex> guard{mtx};
      ids.push_back(out.id());
      cv.notify_all();
      if (ids.size() == 1) {
        stuck.emplace_back(std::move(out), std::move(r));
        return;
      }
      guard.unlock();
      out.send_all(
        self, [i = uint32_t{0}, n]() mutable -> std::optional<int32_t> {
          if (i == n)
            return std::nullopt;
          return static_cast<int32_t>(i++);
        },
        [r](const caf::error&) { r.ok({}); });
    });
    return d.handler();
  }

  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, wait_bound, [&] { return ids.size() >= n; });
  }
};

} // namespace

// r[verify retry.channel.volatile.rebinding]
TEST_CASE("an idempotent call with channels runs again after a resume on fresh channel ids, and the new run's "
          "items reach the caller's receiving end",
          "[actors][retry]") {
  actor_fixture f;
  generator_runs runs;
  retry_pair p{f, runs.handler()};
  caller root{p.pair.client.root};
  auto [out, in] = channel<int32_t>();
  auto result = f.async([root, out = out](caf::scoped_actor& a) {
    return client<generator_service>{root}.call<generate>(a, {3, out}, wait_bound);
  });
  REQUIRE(runs.wait_for(1));
  p.break_and_resume();
  REQUIRE(runs.wait_for(2));
  CHECK(drain(in) == std::vector<int32_t>{0, 1, 2});
  REQUIRE(result.wait_for(wait_bound) == std::future_status::ready);
  auto r = result.get();
  REQUIRE(r);
  CHECK(r->is_ok());
  std::lock_guard<std::mutex> guard{runs.mtx};
  REQUIRE(runs.ids.size() == 2);
  CHECK(runs.ids[0] != runs.ids[1]);
  CHECK(runs.ids[0] % 2 == runs.ids[1] % 2); // still the caller's parity
}

TEST_CASE("channel ids in encoded arguments are rewritten in place, varint lengths and all; a mismatch is refused",
          "[retry]") {
  // u8 3, channel 127, String "AB", channel 5
  payload args{byte_buffer{0x03, 0x7f, 0x02, 0x41, 0x42, 0x05}};
  auto out = detail::rewrite_channel_ids(args, {1, 5}, {127, 5}, {129, 7});
  REQUIRE(out);
  CHECK(*out == payload{byte_buffer{0x03, 0x81, 0x01, 0x02, 0x41, 0x42, 0x07}});
  CHECK_FALSE(detail::rewrite_channel_ids(args, {1, 5}, {127, 6}, {129, 7}));
  CHECK_FALSE(detail::rewrite_channel_ids(args, {5, 1}, {5, 127}, {7, 129}));
  CHECK_FALSE(detail::rewrite_channel_ids(args, {1, 6}, {127, 5}, {129, 7}));
  CHECK_FALSE(detail::rewrite_channel_ids(args, {1}, {127, 5}, {129, 7}));
}
