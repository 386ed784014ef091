// vox-bench: open-loop load, calls on a fixed schedule whatever the replies do.
#pragma once

#include <caf/actor_system.hpp>

#include "actors/handles.hpp"
#include "bench/common.hpp"

namespace voxbench {

struct open_loop_result {
  measurement calls;
  /// How late the driving actor's ticks ran against their scheduled times (timer thread
  /// to actor): the generator's own share of `calls.latency`.
  latency_summary tick_lag;
};

/// Plain echo calls on `c` at `rate` calls/s from one event-based actor. Every ~1 ms tick
/// issues the calls whose intended send time (k / rate after the start) has come, without
/// waiting for replies. Latency is measured from each call's intended send time, so a
/// late tick or a backed-up connection shows in it (no coordinated omission).
///
/// Calls intended during `t.warmup_s` are not counted; those intended during the next
/// `t.measure_s` are. `calls.ops`/`calls.seconds`: counted calls completed, over the time
/// from the first counted intended send to the last counted reply; `calls.latency` has
/// p50/p99/p99.9 of the counted calls. A call error or a wrong echo fails the result.
open_loop_result measure_open_loop(caf::actor_system& sys, const vox::caller& c, double rate, timing t);

} // namespace voxbench
