#include "bench/open_loop.hpp"

#include <cmath>
#include <memory>

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>

#include "bench/driving.hpp"

namespace voxbench {

namespace {

using tick_atom = caf::atom_constant<caf::atom("vb_tick")>;

constexpr auto tick = std::chrono::milliseconds{1};

// The schedule is a burst every tick: tick j (at start + j ms) is due
// floor((j+1)·rate/1000) − floor(j·rate/1000) calls, so the offered rate is exact and
// every call's intended send time is its tick's time. A per-call schedule served by 1 ms
// ticks would add up to 1 ms of the generator's own granularity to every latency.
struct open_loop_state : run_state<open_loop_result> {
  open_loop_state(vox::driver_actor d, double r, timing t)
    : driver(std::move(d)), body(make_body()), rate(r), latency(t.measure_s, r),
      tick_lag(t.measure_s, 1000.0 / static_cast<double>(tick.count())) {
    first_counted_tick = static_cast<uint64_t>(std::llround(t.warmup_s * 1000));
    end_tick = first_counted_tick + std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(t.measure_s * 1000)));
  }

  vox::driver_actor driver;
  vox::payload body;
  double rate;
  clock_type::time_point start;
  uint64_t first_counted_tick = 0;
  uint64_t end_tick = 0; ///< ticks [0, end_tick) issue calls
  uint64_t next_tick = 0;
  uint64_t inflight = 0;
  uint64_t counted_done = 0;
  clock_type::time_point last_done;
  latency_recorder latency;
  latency_recorder tick_lag; ///< how late each tick ran against its time

  clock_type::time_point tick_time(uint64_t j) const { return start + static_cast<int64_t>(j) * tick; }
  uint64_t calls_before(uint64_t j) const {
    return static_cast<uint64_t>(std::floor(static_cast<double>(j) * rate / 1000.0));
  }

  open_loop_result result() {
    open_loop_result r;
    r.calls.ok = true;
    r.calls.ops = counted_done;
    r.calls.seconds = std::chrono::duration<double>(last_done - tick_time(first_counted_tick)).count();
    r.calls.latency = latency.summary();
    r.tick_lag = tick_lag.summary();
    return r;
  }

  void fail(caf::event_based_actor* self, std::string why) {
    open_loop_result r;
    r.calls = measurement::failed(std::move(why));
    finish(self, std::move(r));
  }
};

using state_ptr = std::shared_ptr<open_loop_state>;

void issue(caf::event_based_actor* self, const state_ptr& st, clock_type::time_point intended, bool counted) {
  ++st->inflight;
  vox::outgoing_call call;
  call.method_id = 1;
  call.args = st->body;
  self->request(st->driver, caf::infinite, vox::call_atom::value, std::move(call))
    .then(
      [self, st, intended, counted](vox::call_response& r) {
        auto now = clock_type::now();
        --st->inflight;
        if (st->finished)
          return;
        if (!is_echo_of(r.ret, st->body)) {
          st->fail(self, "a reply was not the echo of its call");
          return;
        }
        if (counted) {
          ++st->counted_done;
          st->last_done = now;
          st->latency.add(now - intended);
        }
        if (st->inflight == 0 && st->next_tick == st->end_tick)
          st->finish(self, st->result());
      },
      [self, st](caf::error& e) {
        --st->inflight;
        st->fail(self, "call failed: " + self->system().render(e));
      });
}

// Issues every tick that is due (several if this one came late), then sleeps until the
// next tick's time.
void on_tick(caf::event_based_actor* self, const state_ptr& st) {
  if (st->finished)
    return;
  auto now = clock_type::now();
  if (st->next_tick > st->first_counted_tick && st->next_tick < st->end_tick)
    st->tick_lag.add(now - st->tick_time(st->next_tick));
  while (st->next_tick < st->end_tick && st->tick_time(st->next_tick) <= now) {
    auto j = st->next_tick++;
    bool counted = j >= st->first_counted_tick;
    for (auto n = st->calls_before(j + 1) - st->calls_before(j); n > 0; --n)
      issue(self, st, st->tick_time(j), counted);
  }
  if (st->next_tick < st->end_tick)
    self->delayed_send(self, st->tick_time(st->next_tick) - now, tick_atom::value);
  else if (st->inflight == 0)
    st->finish(self, st->result());
}

} // namespace

open_loop_result measure_open_loop(caf::actor_system& sys, const vox::caller& c, double rate, timing t) {
  open_loop_result failed;
  if (!c || !(rate >= 1)) {
    failed.calls = measurement::failed(!c ? "no caller" : "no offered rate");
    return failed;
  }
  auto limit = limit_of(t);
  failed.calls = measurement::failed(timeout_text(limit));
  auto st = std::make_shared<open_loop_state>(c.driver(), rate, t);
  return run_bounded(sys, st, limit, std::move(failed),
                     [](caf::event_based_actor* self, state_ptr st) -> caf::behavior {
                       st->start = clock_type::now();
                       on_tick(self, st);
                       return {[self, st](tick_atom) { on_tick(self, st); }};
                     });
}

} // namespace voxbench
