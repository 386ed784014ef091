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

/// A resumable Testbed server with retry whose generate_retry_* methods cut the link
/// after the `breaker`'s n-th item, as the conformance harness's server does.
inline session_server::config cutting_testbed_server(const std::shared_ptr<testbed::item_breaker>& breaker) {
  auto cfg = testbed_server();
  cfg.options = testbed::serving_options(breaker);
  cfg.options.log = logless().log;
  cfg.options.resumable = true;
  cfg.options.retry = true;
  cfg.on_link = [breaker](const link_ptr& lnk) { breaker->accepted(lnk); };
  return cfg;
}

/// Options of a resumable initiator with retry that dials 127.0.0.1:`port` again when
/// its link breaks.
inline session_options resuming_client(uint16_t port, session_options opts = logless()) {
  opts.resumable = true;
  opts.retry = true;
  opts.reconnect = [port] { return tcp_connect("127.0.0.1", port); };
  return opts;
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
