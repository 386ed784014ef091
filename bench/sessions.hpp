// vox-bench: many concurrent idle TCP sessions against one session_server, each side in
// its own process (so the server's RSS and thread count are its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/common.hpp"

namespace voxbench {

/// Handshakes the client keeps in flight (one client thread each).
inline constexpr size_t session_open_parallelism = 64;

/// `vox-bench sessions-server`: one vox::session_server on 127.0.0.1 (ephemeral port,
/// bench_options: echo root handler, default handshake limit). Prints
/// "sessions-server port P", then answers every "stats" line on stdin with
/// "stats threads T rss-kb R sessions S"; exits at EOF.
/// With `certs` (a make_certs.sh directory), the sessions are TLS.
int run_sessions_server(const sched_options& s, const std::string& certs = {});

/// `vox-bench sessions-client`: opens one warm-up session and prints "warm"; on the line
/// "open" it opens `n` more sessions to 127.0.0.1:`port` (tcp_connect, connect_session,
/// one echo call each; `session_open_parallelism` at a time), prints
/// "opened N seconds S" or "sessions-error …", and keeps them all open until EOF.
int run_sessions_client(uint16_t port, size_t n, const sched_options& s, const std::string& certs = {});

/// Runs both children and reports what the server process saw.
struct sessions_result {
  bool ok = false;
  std::string error; ///< set when !ok
  size_t sessions = 0;
  double open_seconds = 0; ///< opening all `sessions` (connect + handshake + one call)
  long threads_before = 0, threads_after = 0;
  long rss_before_kb = 0, rss_after_kb = 0;
};

/// `child_args` go to both children (scheduler options, `--certs DIR` for TLS). Everything up to the "after"
/// sample is cut off after `limit`; the children's teardown has its own grace period.
sessions_result measure_sessions(size_t n, const std::vector<std::string>& child_args, std::chrono::seconds limit);

} // namespace voxbench
