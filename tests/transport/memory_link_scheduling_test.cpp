// How a memory link schedules the actor a frame wakes: on the sender's execution unit,
// behind the jobs already waiting there (transport/memory_link.cpp, sender_unit).
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "transport/bare_conduit.hpp"
#include "transport/memory_link.hpp"

using namespace vox;
using namespace std::chrono_literals;

namespace {

/// A job that is only ever recorded, never run.
struct inert_job final : caf::resumable {
  resume_result resume(caf::execution_unit*, size_t) override { return done; }
  void intrusive_ptr_add_ref_impl() override {}
  void intrusive_ptr_release_impl() override {}
};

/// An execution unit that records what is scheduled on it.
struct recording_unit final : caf::execution_unit {
  std::vector<caf::resumable*> jobs;
  void exec_later(caf::resumable* job) override { jobs.push_back(job); }
};

/// Schedules `job` on whatever unit the link hands over, as an actor's enqueue does.
struct scheduling_receiver final : link_receiver {
  caf::resumable* job = nullptr;
  int frames = 0;
  int without_unit = 0;
  void on_frame(byte_span, caf::execution_unit* ctx) override {
    ++frames;
    if (ctx == nullptr)
      ++without_unit;
    else
      ctx->exec_later(job);
  }
  void on_end(caf::error, caf::execution_unit*) override {}
};

/// What ran, in order, on a one-thread actor system.
struct run_log {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> names;

  void add(std::string name) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      names.push_back(std::move(name));
    }
    cv.notify_all();
  }
  bool wait(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, 10s, [&] { return names.size() >= n; });
  }
};

caf::behavior logging(caf::event_based_actor*, run_log* log, std::string name) {
  return {
    [log, name](int) { log->add(name); },
    [](caf::ok_atom) { return caf::ok_atom::value; },
  };
}

/// On ok_atom, wakes `first` with an ordinary send, then `out`'s receiver across the link.
/// (Spawned with arguments: CAF 0.17 binds a null pointer for a function actor without
/// any, which UBSan reports.)
caf::behavior sending(caf::event_based_actor* self, link_ptr out, caf::actor first) {
  return {
    [self, out, first](caf::ok_atom) {
      self->send(first, 1);
      (void) out->send(byte_buffer{1}, self->context());
    },
  };
}

/// Delivers every frame to `whom` as the sessions' input does: through the given unit.
struct actor_receiver final : link_receiver {
  explicit actor_receiver(caf::actor a) : whom(std::move(a)) {}
  caf::actor whom;
  void on_frame(byte_span, caf::execution_unit* ctx) override {
    whom->enqueue(nullptr, caf::make_message_id(), caf::make_message(2), ctx);
  }
  void on_end(caf::error, caf::execution_unit*) override {}
};

} // namespace

TEST_CASE("a memory link hands the receiver the sender's execution unit, through the conduit too",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  auto receiver = std::make_shared<scheduling_receiver>();
  inert_job job;
  receiver->job = &job;
  b->start(receiver, nullptr);
  recording_unit unit;

  REQUIRE(a->send(byte_buffer{1}, &unit));
  bare_conduit conduit{a};
  REQUIRE(conduit.send(message{0, ping{7}}, conduit.generation(), &unit));
  byte_span one[] = {byte_span{}};
  REQUIRE(a->send_many(one, &unit));
  CHECK(unit.jobs == std::vector<caf::resumable*>{&job, &job, &job});

  // A thread that is no actor's has no unit to give.
  REQUIRE(a->send(byte_buffer{2}));
  CHECK(receiver->frames == 4);
  CHECK(receiver->without_unit == 1);
}

TEST_CASE("an actor woken across a memory link waits behind the jobs already queued on the sender's worker",
          "[transport]") {
  // One worker, so the order of its queue is the order things run. The sender first
  // wakes `first` with an ordinary send (CAF puts it at the front of the queue), then
  // `second` across the link. Had the link's delivery also gone to the front, `second`
  // would run first: two sessions over a memory link would starve whatever they leave
  // behind on the worker.
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  caf::actor_system sys{cfg};
  run_log log;
  auto first = sys.spawn(logging, &log, std::string{"first"});
  auto second = sys.spawn(logging, &log, std::string{"second"});
  auto [a, b] = make_memory_link_pair();
  b->start(std::make_shared<actor_receiver>(second), nullptr);
  link_ptr out = a;
  auto sender = sys.spawn(sending, out, first);
  {
    caf::scoped_actor self{sys};
    for (auto& whom : {first, second})
      self->request(whom, 10s, caf::ok_atom::value).receive([](caf::ok_atom) {}, [](caf::error&) { FAIL("no answer"); });
  }
  caf::anon_send(sender, caf::ok_atom::value);
  REQUIRE(log.wait(2));
  CHECK(log.names == std::vector<std::string>{"first", "second"});
  a->abort();
  for (auto& whom : {first, second, sender})
    caf::anon_send_exit(whom, caf::exit_reason::user_shutdown);
}
