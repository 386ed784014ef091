// vox-bench: the pieces every measured loop shares: warm-up/counted/drain phases, and
// running one driving actor with a wall-clock bound.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "bench/common.hpp"

namespace voxbench {

/// Splits a run into warm-up (uncounted), a counted interval, and a drain of what is
/// still in flight when the interval ends (counted, and the interval extends to the last
/// completion).
class phase_clock {
public:
  explicit phase_clock(timing t)
    : warm_end_(clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                  std::chrono::duration<double>(t.warmup_s))),
      measure_(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(t.measure_s))) {}

  /// Records one completed operation; false once no new operation should be started.
  bool complete(clock_type::time_point now) {
    counted_ = phase_ != phase::warm;
    switch (phase_) {
      case phase::warm:
        if (now >= warm_end_) { // this completion starts the counted interval
          phase_ = phase::measuring;
          start_ = last_ = now;
          end_ = now + measure_;
        }
        return true;
      case phase::measuring:
        ++count_;
        last_ = now;
        if (now >= end_)
          phase_ = phase::draining;
        return phase_ == phase::measuring;
      case phase::draining:
        ++count_;
        last_ = now;
        return false;
    }
    return false;
  }

  /// True if the last `complete` was counted (its latency belongs to the result).
  bool last_counted() const { return counted_; }

  measurement result() const {
    measurement m;
    m.ok = true;
    m.ops = count_;
    m.seconds = std::chrono::duration<double>(last_ - start_).count();
    return m;
  }

private:
  enum class phase { warm, measuring, draining };
  phase phase_ = phase::warm;
  clock_type::time_point warm_end_;
  clock_type::duration measure_;
  clock_type::time_point start_, end_, last_;
  uint64_t count_ = 0;
  bool counted_ = false;
};

/// What a driving actor shares with the thread waiting for it. Only the actor touches it
/// after spawn; the waiting thread only touches the future.
template <class Result>
struct run_state {
  std::promise<Result> done;
  bool finished = false;

  void finish(caf::event_based_actor* self, Result r) {
    if (finished)
      return;
    finished = true;
    done.set_value(std::move(r));
    self->quit();
  }
};

/// Spawns `body(self, st)` (which may return the actor's behavior) and waits at most
/// `limit` for its result; on timeout the actor is killed and `on_timeout` returned.
template <class State, class Result, class Body>
Result run_bounded(caf::actor_system& sys, std::shared_ptr<State> st, std::chrono::milliseconds limit,
                   Result on_timeout, Body body) {
  auto fut = st->done.get_future();
  auto worker = sys.spawn([body](caf::event_based_actor* self, std::shared_ptr<State> s) { return body(self, s); }, st);
  if (fut.wait_for(limit) != std::future_status::ready) {
    caf::anon_send_exit(worker, caf::exit_reason::kill);
    return on_timeout;
  }
  return fut.get();
}

inline std::chrono::milliseconds limit_of(timing t) {
  return std::chrono::milliseconds{static_cast<long>((t.warmup_s + t.measure_s) * 1000) + 20000};
}

inline std::string timeout_text(std::chrono::milliseconds limit) {
  return "no result within " + std::to_string(limit.count() / 1000) + " s";
}

} // namespace voxbench
