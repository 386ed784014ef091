// vox-bench: what every benchmark shares (payload, echo service, timing, results).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor_system_config.hpp>

#include "actors/session_actor.hpp"

namespace voxbench {

using clock_type = std::chrono::steady_clock;

/// Every call and every raw frame carries this many payload bytes.
inline constexpr size_t payload_size = 32;

/// The 32-byte argument payload sent by every call.
vox::payload make_body();

/// The echo handler: answers Ok(args), i.e. 0x00 followed by the argument bytes.
void echo(vox::incoming_call in, vox::reply_sink sink);

/// True if `ret` is what `echo` answers to `args`.
bool is_echo_of(const vox::payload& ret, const vox::payload& args);

/// Options for both sides of a benchmark session: echo on the root connection, every
/// virtual connection accepted and served by echo, diagnostics to stderr, no keepalive.
vox::session_options bench_options();

/// Scheduler settings shared by every process of a run.
struct sched_options {
  int threads = 2;  ///< `scheduler.max-threads`
  long poll = -1;   ///< `work-stealing.aggressive-poll-attempts`; < 0 keeps CAF's default
};

void apply(caf::actor_system_config& cfg, const sched_options& s);

/// How long one row runs.
struct timing {
  double warmup_s = 0.5;  ///< the same workload first, not counted
  double measure_s = 2.0; ///< counted
};

/// One measured rate, or why there is none.
struct measurement {
  bool ok = false;
  uint64_t ops = 0;     ///< operations completed inside the measured interval
  double seconds = 0;   ///< length of the measured interval
  std::string error;    ///< set when !ok

  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  static measurement failed(std::string why) {
    measurement m;
    m.error = std::move(why);
    return m;
  }
};

/// Resident set size of this process in KiB (from /proc/self/statm); -1 on failure.
long rss_kb();

double seconds_since(clock_type::time_point t);

} // namespace voxbench
