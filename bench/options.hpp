// vox-bench's command line: one set of options for every mode (the default run passes
// the scheduler options on to the children it starts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/io.hpp"
#include "bench/common.hpp"
#include "transport/compression.hpp"

namespace voxbench {

struct cli {
  std::string mode = "all";
  timing t;
  sched_options sched;
  size_t count = 10000; ///< idle virtual connections for the RSS row
  size_t sessions = 10000; ///< idle TCP sessions for the sessions row
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint16_t raw_port = 0;
  bool until_eof = false;
  std::string only; ///< run only the rows whose name contains one of these, split at '|' (floors always run)
  std::string certs; ///< server: where make_certs.sh put the TLS port's certificate
  vox::compression_options compression; ///< every TCP session's (the "tcp, zstd" rows always compress)
  /// The io_inline policy of the "tcp" rows' client reactor; nullopt: the library's default
  /// reactor.
  std::optional<vox::io_inline> tcp_inline;
  double max_rate = 0; ///< > 0: the open-loop rows offer shares of this, not the measured max
  int paired = 0; ///< > 0: rounds of the paired "call, 1 outstanding" row

  /// True if the row named `row_name` ("name (transport)") is to run (see --only).
  bool wants(const std::string& row_name) const;
};

/// Parses the command line into `o`; nullopt: run `o`, otherwise the exit status (usage
/// or an error was printed). Every mode takes every option; those a mode does not use
/// are harmless.
std::optional<int> parse(int argc, char** argv, cli& o);

/// The options a child process gets from its parent: scheduler and compression.
std::vector<std::string> sched_args(const cli& o);

} // namespace voxbench
