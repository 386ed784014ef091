// The modes of vox-bench besides the default run, each in a process of its own that the
// default run starts (/proc/self/exe): the TCP server and the RSS measurement.
#pragma once

#include "bench/options.hpp"

namespace voxbench {

/// `vox-bench server`: every TCP service the rows use, on the ports it prints; runs until
/// SIGINT/SIGTERM, or with --until-eof until its stdin closes.
int run_server(const cli& o);

/// `vox-bench rss`: RSS per idle virtual connection and per pending channel call, printed
/// as lines the default run parses.
int run_rss(const cli& o);

} // namespace voxbench
