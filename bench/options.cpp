#include "bench/options.hpp"

#include <array>
#include <cstring>

#include "apps/cli.hpp"

namespace voxbench {

namespace {

const char* const usage_text =
  "usage: vox-bench [--seconds S] [--warmup S] [--threads N] [--poll N] [--count N] [--sessions N]\n"
  "                 [--only TEXT] [--compress off|prefer|require] [--compress-level N]\n"
  "                 [--inline vox|replies|all] [--max-rate R] [--paired N]\n"
  "       vox-bench server [--host H] [--port N] [--raw-port M] [--threads N] [--poll N] [--busy-poll U]\n"
  "                        [--until-eof]\n"
  "       vox-bench rss [--count N] [--threads N] [--poll N]\n"
  "       vox-bench sessions-server [--sessions N] [--threads N] [--poll N]\n"
  "       vox-bench sessions-client --port P [--sessions N] [--threads N] [--poll N]\n"
  "  --seconds S   counted time per row (default 2)\n"
  "  --warmup S    uncounted warm-up per row (default 0.5)\n"
  "  --threads N   CAF scheduler.max-threads in every process (default 2)\n"
  "  --poll N      CAF work-stealing.aggressive-poll-attempts (default: CAF's)\n"
  "  --busy-poll U busy-poll window of the \"tcp, busy-poll\" rows' reactors, us (default 100)\n"
  "  --moderate N  CAF work-stealing.moderate-poll-attempts (default 0; CAF's is 500)\n"
  "  --count N     idle virtual connections for the RSS row (default 10000)\n"
  "  --sessions N  idle TCP sessions for the sessions row (default 10000)\n"
  "  --only TEXT   run only the rows whose \"name (transport)\" contains TEXT, or one of A|B|...\n"
  "                (floors always run)\n"
  "  --compress M  zstd compression of every TCP session (default off); the \"tcp, zstd\" rows and\n"
  "                the wire-bytes rows compress regardless\n"
  "  --compress-level N  zstd level of every compressing session (default 1)\n"
  "  --inline P    io_inline policy of the \"tcp\" rows' client reactor: vox (vox_actors),\n"
  "                replies (reply_handlers) or all (all_actors); default: the library's default\n"
  "                reactor (replies), for A/B runs of the policies in one binary\n"
  "  --max-rate R  the open-loop rows offer their shares of R calls/s instead of the measured\n"
  "                \"call, 64 outstanding (tcp)\" rate (fixed load across runs)\n"
  "  --paired N    add \"call, 1 outstanding, paired (tcp)\": N rounds of the ping-pong floor\n"
  "                and the row in turns, --seconds each; its ratio (\" i\") is to the floor of\n"
  "                its own rounds (default 0: not run)\n";

} // namespace

bool cli::wants(const std::string& row_name) const {
  if (only.empty())
    return true;
  for (size_t start = 0;;) {
    auto bar = only.find('|', start);
    auto part = only.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (!part.empty() && row_name.find(part) != std::string::npos)
      return true;
    if (bar == std::string::npos)
      return false;
    start = bar + 1;
  }
}

std::optional<int> parse(int argc, char** argv, cli& o) {
  int first = 1;
  if (argc > 1)
    for (const char* m : {"server", "rss", "sessions-server", "sessions-client"})
      if (std::strcmp(argv[1], m) == 0)
        o.mode = argv[first++];
  vox::cli::options opts{o.mode == "all" ? "vox-bench" : "vox-bench " + o.mode, usage_text};
  opts.seconds("--seconds", o.t.measure_s, 0.001, 60)
    .seconds("--warmup", o.t.warmup_s, 0, 60)
    .number("--threads", o.sched.threads, 1, 64)
    .number("--poll", o.sched.poll, -1L, 1'000'000'000L)
    .number("--busy-poll", o.sched.busy_poll_us, 0L, 1'000'000L)
    .number("--moderate", o.sched.moderate, -1L, 1'000'000'000L)
    .number<size_t>("--count", o.count, 1, 1'000'000)
    .number<size_t>("--sessions", o.sessions, 1, 1'000'000)
    .text("--host", o.host)
    .number<uint16_t>("--port", o.port, 0, 65535)
    .number<uint16_t>("--raw-port", o.raw_port, 0, 65535)
    .text("--only", o.only)
    .text("--certs", o.certs)
    .flag("--until-eof", o.until_eof)
    .choice("--inline", {"vox", "replies", "all"},
            [&](size_t i) {
              o.tcp_inline = std::array{vox::io_inline::vox_actors, vox::io_inline::reply_handlers,
                                        vox::io_inline::all_actors}[i];
            })
    .number("--max-rate", o.max_rate, 1.0, 1e9)
    .number("--paired", o.paired, 0, 100)
    .compression(o.compression);
  if (auto status = opts.parse(argc, argv, first))
    return status;
  if (o.mode == "sessions-client" && o.port == 0)
    return opts.error("--port is required");
  return std::nullopt;
}

std::vector<std::string> sched_args(const cli& o) {
  std::vector<std::string> out{"--threads", std::to_string(o.sched.threads)};
  if (o.sched.poll >= 0) {
    out.push_back("--poll");
    out.push_back(std::to_string(o.sched.poll));
  }
  out.push_back("--busy-poll");
  out.push_back(std::to_string(o.sched.busy_poll_us));
  if (o.sched.moderate >= 0) {
    out.push_back("--moderate");
    out.push_back(std::to_string(o.sched.moderate));
  }
  for (auto arg : {std::string{"--compress"}, std::string{vox::to_string(o.compression.mode)},
                   std::string{"--compress-level"}, std::to_string(o.compression.level)})
    out.push_back(std::move(arg));
  return out;
}

} // namespace voxbench
