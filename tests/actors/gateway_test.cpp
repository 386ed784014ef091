// Forwarding servers (actors/gateway.hpp): a session_server whose sessions' connections
// are spliced upstream, sharing one upstream session or each with its own.
#include <catch2/catch.hpp>

#include "actors/gateway.hpp"
#include "support/session_fixture.hpp"
#include "support/testbed_scenarios.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// Connects a quiet client session to `port` on 127.0.0.1.
caf::expected<session_handle> dial(actor_fixture& f, uint16_t port, session_options opts = logless()) {
  auto lnk = tcp_connect("127.0.0.1", port);
  if (!lnk)
    return std::move(lnk.error());
  auto s = connect_session(f.sys, *lnk, std::move(opts));
  if (s)
    f.track(*s);
  return s;
}

/// Every scenario on the root and on a virtual connection of a client of `port`.
void check_through(actor_fixture& f, uint16_t port, const std::string& label) {
  auto client = dial(f, port);
  REQUIRE(client);
  vox::client<testbed::service_type> root{caller{client->root}};
  testbed::scenario_context ctx{f.sys, f.self, root};
  CHECK(check_scenarios(ctx, false, label + " root: ") > 25);
  auto conn = f.open(client->actor, {parity::odd, 64});
  REQUIRE(conn);
  vox::client<testbed::service_type> virt{caller{*conn}};
  testbed::scenario_context vctx{f.sys, f.self, virt};
  check_scenarios(vctx, false, label + " virtual: ");
}

/// The first scenario on `client`'s root: its failure, if any.
std::optional<std::string> first_scenario(actor_fixture& f, const session_handle& client) {
  vox::client<testbed::service_type> root{caller{client.root}};
  testbed::scenario_context ctx{f.sys, f.self, root};
  return testbed::scenarios().front().run(ctx);
}

session_server::config gateway_config() {
  session_server::config cfg;
  cfg.options = logless();
  return cfg;
}

} // namespace

TEST_CASE("a forwarding server passes every Testbed scenario over one shared upstream session", "[gateway][testbed]") {
  actor_fixture f;
  auto upstream_srv = session_server::start(f.sys, testbed_server());
  REQUIRE(upstream_srv);
  auto up = dial(f, (*upstream_srv)->port());
  REQUIRE(up);
  auto cfg = gateway_config();
  forward_connections(f.sys, cfg, [a = up->actor] { return std::optional{a}; });
  auto gw = session_server::start(f.sys, cfg);
  REQUIRE(gw);
  check_through(f, (*gw)->port(), "shared");
  // Two clients' connections are virtual connections of the one upstream session.
  auto second = dial(f, (*gw)->port());
  REQUIRE(second);
  REQUIRE_FALSE(first_scenario(f, *second));
  CHECK((*upstream_srv)->sessions_started() == 1);
  CHECK(f.info(up->actor).active_connections >= 2); // its root, and the live client's root
}

TEST_CASE("a forwarding server with a session per client passes every Testbed scenario", "[gateway][testbed]") {
  actor_fixture f;
  auto upstream_srv = session_server::start(f.sys, testbed_server());
  REQUIRE(upstream_srv);
  auto port = (*upstream_srv)->port();
  auto cfg = gateway_config();
  forward_sessions(f.sys, cfg, [&f, port](const connection_settings& client) -> caf::expected<session_handle> {
    auto opts = logless();
    opts.settings = client;
    auto lnk = tcp_connect("127.0.0.1", port);
    if (!lnk)
      return std::move(lnk.error());
    return connect_session(f.sys, *lnk, opts); // ends with the client's session
  });
  auto gw = session_server::start(f.sys, cfg);
  REQUIRE(gw);
  check_through(f, (*gw)->port(), "per session");
  auto second = dial(f, (*gw)->port());
  REQUIRE(second);
  REQUIRE_FALSE(first_scenario(f, *second));
  CHECK((*upstream_srv)->sessions_started() == 2); // one upstream session per client
}

TEST_CASE("a forwarding server ends a client's session when its upstream cannot be dialled", "[gateway]") {
  actor_fixture f;
  auto cfg = gateway_config();
  forward_sessions(f.sys, cfg, [](const connection_settings&) -> caf::expected<session_handle> {
    return make_error(errc::io_error, "no upstream in this test");
  });
  auto gw = session_server::start(f.sys, cfg);
  REQUIRE(gw);
  auto client = dial(f, (*gw)->port());
  REQUIRE(client);
  CHECK(f.wait_down(client->actor)); // the gateway ended it: the link closed under it
}
