// The actor system the fuzz targets share.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

namespace vox::fuzz {

/// Made once and never destroyed: CAF 0.17's actor_system must not be torn down by exit
/// handlers, after CAF's own statics (a use after free in ~actor_system).
inline caf::actor_system& actor_system() {
  static auto* sys = new caf::actor_system{*new caf::actor_system_config};
  return *sys;
}

} // namespace vox::fuzz
