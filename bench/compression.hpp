// vox-bench: what zstd link compression saves on the wire and buys on a slow link. Both
// sessions run in this process, through a relay that counts (and optionally throttles)
// the bytes between them; the calls/s rows with compression are the "tcp, zstd" rows of
// the main table.
#pragma once

#include <vector>

#include <caf/actor_system.hpp>

#include "bench/common.hpp"
#include "bench/table.hpp"

namespace voxbench {

/// Bytes per call for the Testbed create_canvas/echo_point mix and for a 64 KiB JSON-like
/// echo, uncompressed and compressed (level `level`); then echo throughput of that
/// payload through a link throttled to `throttle_bytes_per_s`, both ways.
std::vector<row> compression_rows(caf::actor_system& sys, int level, double throttle_bytes_per_s, timing t);

} // namespace voxbench
