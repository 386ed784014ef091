#include "bench/table.hpp"

#include <algorithm>
#include <cstdio>

namespace voxbench {

row rate_row(std::string name, std::string transport, std::string unit, std::string what,
             const measurement& m, floor_kind floor) {
  row r{std::move(name), std::move(transport), std::move(unit), true, m.ok, m.rate(), {}, floor};
  if (m.ok) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%llu %s in %.2f s", static_cast<unsigned long long>(m.ops), what.c_str(),
                  m.seconds);
    r.detail = buf;
    if (m.latency)
      r.detail += "; " + describe(*m.latency);
  } else {
    r.detail = "FAILED: " + m.error;
  }
  return r;
}

row open_loop_row(std::string name, double offered, const open_loop_result& r) {
  auto& m = r.calls;
  row out{std::move(name), "tcp", "calls/s", true, m.ok, m.rate(), {}, floor_kind::pipelined};
  if (!m.ok) {
    out.detail = "FAILED: " + m.error;
    return out;
  }
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s; offered %.0f/s, %llu calls in %.2f s; tick lag p50 %.0f us",
                describe(*m.latency, true).c_str(), offered, static_cast<unsigned long long>(m.ops), m.seconds,
                r.tick_lag.p50_us);
  out.detail = buf;
  return out;
}

row sessions_row(const sessions_result& r, const std::string& transport) {
  row out{sessions_row_name, transport, "KiB/session", false, r.ok, 0, {}};
  if (!r.ok) {
    out.detail = "FAILED: " + r.error;
    return out;
  }
  out.value = static_cast<double>(r.rss_after_kb - r.rss_before_kb) / static_cast<double>(r.sessions);
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "%zu sessions opened at %.0f/s (%.2f s; connect+handshake+call); server threads %ld -> %ld, "
                "RSS %ld -> %ld KiB",
                r.sessions, static_cast<double>(r.sessions) / r.open_seconds, r.open_seconds, r.threads_before,
                r.threads_after, r.rss_before_kb, r.rss_after_kb);
  out.detail = buf;
  return out;
}

void print_table(const std::vector<row>& rows, floors f) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"benchmark", "transport", "result", "unit", "vs floor", "measured"});
  for (auto& r : rows) {
    char value[32] = "-", ratio[32] = "-";
    if (r.ok) {
      std::snprintf(value, sizeof value, r.rate ? "%.0f" : "%.2f", r.value);
      bool piped = r.floor == floor_kind::pipelined;
      double floor = r.own_floor > 0 ? r.own_floor : piped ? f.pipelined : f.ping_pong;
      // Ping-pong ratios are padded so the numbers line up with the " p" ones.
      if (r.rate && floor > 0)
        std::snprintf(ratio, sizeof ratio, "%.3fx%s", r.value / floor, r.own_floor > 0 ? " i" : piped ? " p" : "  ");
    }
    cells.push_back({r.name, r.transport, value, r.unit, ratio, r.detail});
  }
  std::vector<size_t> w(cells[0].size(), 0);
  for (auto& c : cells)
    for (size_t i = 0; i < c.size(); ++i)
      w[i] = std::max(w[i], c[i].size());
  auto line = [&](const std::vector<std::string>& c) {
    std::string s = "|";
    for (size_t i = 0; i < c.size(); ++i) {
      bool right = i == 2 || i == 4; // numbers
      std::string pad(w[i] - c[i].size(), ' ');
      s += ' ';
      if (right)
        s += pad;
      s += c[i];
      if (!right)
        s += pad;
      s += " |";
    }
    std::printf("%s\n", s.c_str());
  };
  line(cells[0]);
  std::string sep = "|";
  for (size_t i = 0; i < w.size(); ++i)
    sep += (i == 2 || i == 4) ? std::string(w[i] + 1, '-') + ":|" : std::string(w[i] + 2, '-') + "|";
  std::printf("%s\n", sep.c_str());
  for (size_t i = 1; i < cells.size(); ++i)
    line(cells[i]);
}

} // namespace voxbench
