// The Testbed in test cases: its server, and its client scenarios with one check each.
#pragma once

#include <string>

#include <catch2/catch.hpp>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"
#include "support/session_fixture.hpp"

namespace vox::test {

/// A session_server serving Testbed on the root and every virtual connection, quietly,
/// with link compression `mode`.
inline session_server::config testbed_server(compression_mode mode = compression_mode::off) {
  session_server::config cfg;
  cfg.options = testbed::serving_options();
  cfg.options.log = logless().log;
  cfg.options.compression.mode = mode;
  return cfg;
}

/// Runs every scenario that needs the server to cut the link (`cutting`), or every other
/// one, on `ctx`: one CHECK each, named by `label` and the scenario. Returns how many ran.
inline int check_scenarios(testbed::scenario_context& ctx, bool cutting = false, const std::string& label = {}) {
  int ran = 0;
  for (const auto& s : testbed::scenarios()) {
    if (testbed::needs_link_break(s.name) != cutting)
      continue;
    ++ran;
    auto failure = s.run(ctx);
    INFO(label << s.name << ": " << failure.value_or("ok"));
    CHECK_FALSE(failure);
  }
  return ran;
}

} // namespace vox::test
