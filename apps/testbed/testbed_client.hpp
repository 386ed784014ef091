// The Testbed client scenarios of testbed-service.md §4.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <caf/scoped_actor.hpp>

#include "actors/service.hpp"
#include "apps/testbed/testbed_types.hpp"

namespace vox::testbed {

/// What a scenario needs: a blocking actor and a client on the connection under test.
struct scenario_context {
  caf::actor_system& sys;
  caf::scoped_actor& self;
  client<service_type>& testbed;
};

/// A named scenario: returns nothing when it passes, the reason when it fails.
struct scenario {
  std::string name;
  std::function<std::optional<std::string>(scenario_context&)> run;
};

/// Every scenario, in the order of testbed-service.md §4 (the retry scenarios need
/// session resumption, which vox-caf does not implement yet, and are not listed).
const std::vector<scenario>& scenarios();

/// The scenarios of testbed-service.md that need session resumption.
inline bool needs_resumption(const std::string& name) {
  return name == "channel_retry_non_idem" || name == "channel_retry_idem";
}

} // namespace vox::testbed
