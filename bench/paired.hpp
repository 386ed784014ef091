// vox-bench: a row measured in turns with its floor, for a ratio a noisy machine moves less.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bench/common.hpp"
#include "bench/table.hpp"

namespace voxbench {

/// Both sides of a paired measurement, each summed over its turns.
struct paired_result {
  measurement subject;
  measurement floor;
  std::vector<double> ratios; ///< subject rate / floor rate of each round
};

/// `rounds` rounds of the floor, then the subject, each for `t` (warm-up included): both
/// see the same state of the machine, where a floor taken once, minutes before, may have
/// caught it 25 % faster or slower than the row it divides.
paired_result measure_paired(int rounds, timing t, const std::function<measurement(timing)>& subject,
                             const std::function<measurement(timing)>& floor);

/// The subject's rate, its ratio taken to the floor of its own rounds; the detail names
/// each round's ratio and their median.
row paired_row(std::string name, std::string transport, std::string unit, const paired_result& r);

} // namespace voxbench
