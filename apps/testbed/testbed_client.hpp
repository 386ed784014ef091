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

/// Every scenario, in the order of testbed-service.md §4, the two retry scenarios last.
const std::vector<scenario>& scenarios();

/// The scenarios that only pass against a server that cuts the link in the middle of a
/// generate_retry_* stream (`vox-testbed serve --break-after-items 20`, or the harness's
/// own server); they need a resumable session with retry on the client.
inline bool needs_link_break(const std::string& name) {
  return name == "channel_retry_non_idem" || name == "channel_retry_idem";
}

} // namespace vox::testbed
