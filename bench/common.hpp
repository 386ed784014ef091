// vox-bench: what every benchmark shares (payload, echo service, timing, results).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  /// `work-stealing.moderate-poll-attempts`: 0 (the bench's default) sends an idle worker
  /// from its brief spin straight to its condition variable, where a new job wakes it at
  /// once; CAF's 500 polls with 50 us sleeps in between make every hop to an idle worker
  /// wait out a sleep. < 0 keeps CAF's default.
  long moderate = 0;
  /// `io_reactor::config::busy_poll`, in microseconds, of the reactors behind the
  /// "tcp, busy-poll" rows (client and server); every other row uses the default reactor.
  long busy_poll_us = 100;
};

void apply(caf::actor_system_config& cfg, const sched_options& s);

/// A reactor of one I/O thread that busy-polls for `s.busy_poll_us` (the "tcp, busy-poll" rows).
vox::io_reactor_ptr busy_poll_reactor(caf::actor_system& sys, const sched_options& s);

/// How long one row runs.
struct timing {
  double warmup_s = 0.5;  ///< the same workload first, not counted
  double measure_s = 2.0; ///< counted
};

/// Percentiles of recorded round-trip times (nearest rank), in microseconds.
struct latency_summary {
  size_t samples = 0;
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
};

/// Round-trip times of one row. The vector is reserved up front so that recording in a
/// measured loop does not allocate (unless a row outruns the estimate).
class latency_recorder {
public:
  /// Reserves for `per_second` samples over `seconds`, capped at 4M samples (32 MiB).
  latency_recorder(double seconds, double per_second);

  void add(clock_type::duration d) { ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()); }
  size_t size() const { return ns_.size(); }

  /// Sorts the samples (so call it once the row is done).
  latency_summary summary();

private:
  std::vector<int64_t> ns_;
};

/// "p50 61 us p99 180 us" (and "p99.9 …" if `with_p999`).
std::string describe(const latency_summary& l, bool with_p999 = false);

/// One measured rate, or why there is none.
struct measurement {
  bool ok = false;
  uint64_t ops = 0;     ///< operations completed inside the measured interval
  double seconds = 0;   ///< length of the measured interval
  std::string error;    ///< set when !ok
  std::optional<latency_summary> latency; ///< for rows that record round-trip times

  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  static measurement failed(std::string why) {
    measurement m;
    m.error = std::move(why);
    return m;
  }
};

/// Resident set size of this process in KiB (from /proc/self/statm); -1 on failure.
long rss_kb();
/// This process's OS threads (`Threads:` in /proc/self/status), -1 if unknown.
long thread_count();

double seconds_since(clock_type::time_point t);

/// Raises RLIMIT_NOFILE to its hard limit (every process of a run does: the sessions row
/// holds one socket per session on each side).
void raise_fd_limit();

} // namespace voxbench
