// vox-bench: the result table (one row per measurement, each rate against a floor).
#pragma once

#include <string>
#include <vector>

#include "bench/common.hpp"
#include "bench/open_loop.hpp"
#include "bench/sessions.hpp"

namespace voxbench {

/// Which floor a rate row is divided by.
enum class floor_kind {
  ping_pong, ///< one frame in flight ("0.123x")
  pipelined, ///< 64 frames in flight ("0.123x p")
};

struct row {
  std::string name;
  std::string transport;
  std::string unit;
  bool rate = true; ///< compared with a floor
  bool ok = false;
  double value = 0;
  std::string detail; ///< what was counted, or why the row failed
  floor_kind floor = floor_kind::ping_pong;
  /// > 0: the ratio is to this floor, measured in turns with the row (" i"), not the run's.
  double own_floor = 0;
};

/// The floors of this run; 0 where one failed.
struct floors {
  double ping_pong = 0;
  double pipelined = 0;
};

/// "N <what> in S s" (with p50/p99 if `m` has latencies), or "FAILED: …".
row rate_row(std::string name, std::string transport, std::string unit, std::string what,
             const measurement& m, floor_kind floor = floor_kind::ping_pong);

/// Achieved calls/s of an open-loop run at `offered` calls/s (against the pipelined floor).
row open_loop_row(std::string name, double offered, const open_loop_result& r);

/// Server RSS per idle session, with threads and the opening rate in `measured`.
inline constexpr const char* sessions_row_name = "RSS per idle session (server)";
row sessions_row(const sessions_result& r, const std::string& transport = "tcp");

void print_table(const std::vector<row>& rows, floors f);

} // namespace voxbench
