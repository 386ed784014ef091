#include "bench/paired.hpp"

#include <algorithm>
#include <cstdio>

namespace voxbench {

namespace {

void add(measurement& sum, const measurement& m) {
  sum.ops += m.ops;
  sum.seconds += m.seconds;
}

} // namespace

paired_result measure_paired(int rounds, timing t, const std::function<measurement(timing)>& subject,
                             const std::function<measurement(timing)>& floor) {
  paired_result r;
  r.subject.ok = r.floor.ok = true;
  for (int i = 0; i < rounds; ++i) {
    auto f = floor(t);
    auto s = subject(t);
    if (!f.ok || !s.ok) {
      r.subject = s.ok ? measurement::failed("floor: " + f.error) : s;
      return r;
    }
    add(r.floor, f);
    add(r.subject, s);
    if (f.rate() > 0)
      r.ratios.push_back(s.rate() / f.rate());
  }
  return r;
}

row paired_row(std::string name, std::string transport, std::string unit, const paired_result& r) {
  row out{std::move(name), std::move(transport), std::move(unit), true, r.subject.ok, r.subject.rate(), {}};
  if (!r.subject.ok) {
    out.detail = "FAILED: " + r.subject.error;
    return out;
  }
  out.own_floor = r.floor.rate();
  auto sorted = r.ratios;
  std::sort(sorted.begin(), sorted.end());
  std::string each;
  for (auto x : r.ratios) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%.3f", each.empty() ? "" : ", ", x);
    each += buf;
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "floor of its rounds %.0f rt/s; ratio per round %s (median %.3f)",
                out.own_floor, each.c_str(), sorted.empty() ? 0.0 : sorted[sorted.size() / 2]);
  out.detail = buf;
  return out;
}

} // namespace voxbench
