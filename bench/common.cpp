#include "bench/common.hpp"
#include "bench/typed.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <variant>

#include <sys/resource.h>
#include <unistd.h>

namespace voxbench {

vox::payload make_body() {
  vox::payload p(payload_size);
  for (size_t i = 0; i < p.size(); ++i)
    p[i] = static_cast<uint8_t>(0x40 + i);
  return p;
}

void echo(vox::incoming_call in, vox::reply_sink sink) {
  vox::payload ret{0x00};
  ret.insert(ret.end(), in.args.begin(), in.args.end());
  sink.reply(std::move(ret));
}

bool is_echo_of(const vox::payload& ret, const vox::payload& args) {
  return ret.size() == args.size() + 1 && ret[0] == 0x00
         && std::equal(args.begin(), args.end(), ret.begin() + 1);
}

vox::session_options bench_options() {
  vox::session_options o;
  o.root_handler = bench_handler();
  o.acceptor = [h = o.root_handler](vox::connection_id, const vox::connection_settings& peer, const vox::metadata&)
    -> std::variant<vox::accept_connection, vox::reject_connection> {
    return vox::accept_connection{{vox::opposite(peer.parity), 64}, {}, h, {}};
  };
  o.log = [](const std::string& line) { std::fprintf(stderr, "vox-bench[%d]: session: %s\n", getpid(), line.c_str()); };
  return o;
}

void apply(caf::actor_system_config& cfg, const sched_options& s) {
  cfg.set("scheduler.max-threads", static_cast<size_t>(std::max(1, s.threads)));
  if (s.poll >= 0)
    cfg.set("work-stealing.aggressive-poll-attempts", static_cast<size_t>(s.poll));
  if (s.moderate >= 0)
    cfg.set("work-stealing.moderate-poll-attempts", static_cast<size_t>(s.moderate));
}

vox::io_reactor_ptr busy_poll_reactor(caf::actor_system& sys, const sched_options& s) {
  return vox::io_reactor::start(
    sys, vox::io_config(1, vox::io_inline::reply_handlers, std::chrono::microseconds{std::max(0L, s.busy_poll_us)}));
}

long thread_count() {
  std::ifstream in{"/proc/self/status"};
  std::string key;
  while (in >> key) {
    if (key == "Threads:") {
      long n = -1;
      in >> n;
      return n;
    }
    in.ignore(1 << 12, '\n');
  }
  return -1;
}

long rss_kb() {
  std::ifstream in{"/proc/self/statm"};
  long size = 0, resident = 0;
  if (!(in >> size >> resident))
    return -1;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

latency_recorder::latency_recorder(double seconds, double per_second) {
  constexpr double cap = 4 << 20;
  ns_.reserve(static_cast<size_t>(std::min(cap, std::max(0.0, seconds * per_second) + 4096)));
}

latency_summary latency_recorder::summary() {
  latency_summary out;
  out.samples = ns_.size();
  if (ns_.empty())
    return out;
  std::sort(ns_.begin(), ns_.end());
  auto rank = [&](double p) { // nearest rank: the smallest sample with >= p of all at or below it
    auto r = static_cast<size_t>(std::ceil(p * static_cast<double>(ns_.size())));
    return static_cast<double>(ns_[std::clamp<size_t>(r, 1, ns_.size()) - 1]) / 1000.0;
  };
  out.p50_us = rank(0.50);
  out.p99_us = rank(0.99);
  out.p999_us = rank(0.999);
  return out;
}

std::string describe(const latency_summary& l, bool with_p999) {
  auto us = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 10 ? "%.1f" : "%.0f", v);
    return std::string{buf};
  };
  auto out = "p50 " + us(l.p50_us) + " us p99 " + us(l.p99_us) + " us";
  if (with_p999)
    out += " p99.9 " + us(l.p999_us) + " us";
  return out;
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

void raise_fd_limit() {
  rlimit r;
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

} // namespace voxbench
