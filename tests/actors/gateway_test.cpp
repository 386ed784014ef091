// Forwarding servers (actors/gateway.hpp): a session_server whose sessions' connections
// are spliced upstream, sharing one upstream session or each with its own.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <random>

#include "actors/gateway.hpp"
#include "support/cutting_proxy.hpp"
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
  // As vox-gateway: clients resume through it, and operation ids pass through.
  cfg.options.resumable = true;
  cfg.options.retry = true;
  return cfg;
}

/// A resumable session with retry to `port` (see resuming_client), whose first link is
/// `*first` so that a test can cut it.
caf::expected<session_handle> dial_resuming(actor_fixture& f, uint16_t port, session_options opts = logless(),
                                            link_ptr* first = nullptr) {
  auto lnk = tcp_connect("127.0.0.1", port);
  if (!lnk)
    return std::move(lnk.error());
  if (first)
    *first = *lnk;
  auto s = connect_session(f.sys, *lnk, resuming_client(port, std::move(opts)));
  if (s)
    f.track(*s);
  return s;
}

/// A forwarding server sharing one resumable upstream session to `port`, whose log goes
/// to `upstream_log`; `gateway` is its downstream port.
struct shared_gateway {
  session_handle upstream;
  std::shared_ptr<log_recorder> upstream_log;
  std::unique_ptr<session_server> server;

  explicit shared_gateway(actor_fixture& f, uint16_t port, session_options opts = logless()) {
    upstream_log = log_recorder::attach(opts);
    auto up = dial_resuming(f, port, opts);
    REQUIRE(up);
    upstream = *up;
    auto cfg = gateway_config();
    forward_connections(f.sys, cfg, [a = up->actor] { return std::optional{a}; });
    auto srv = session_server::start(f.sys, cfg);
    REQUIRE(srv);
    server = std::move(*srv);
  }
  uint16_t port() const { return server->port(); }
};

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

// The channel retry scenarios need the server's cut of its link to reach the client: the
// gateway's upstream session resumes, its splices cut the clients' links, each client
// resumes and retries, and the retried call goes up again.
TEST_CASE("a link break upstream of forwarding servers reaches their clients, and the retry scenarios pass",
          "[gateway][testbed][retry]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, cutting_testbed_server(std::make_shared<testbed::item_breaker>(20)));
  REQUIRE(srv);
  std::vector<std::unique_ptr<shared_gateway>> chain;
  SECTION("one gateway") { chain.push_back(std::make_unique<shared_gateway>(f, (*srv)->port())); }
  SECTION("two gateways in a row") {
    chain.push_back(std::make_unique<shared_gateway>(f, (*srv)->port()));
    chain.push_back(std::make_unique<shared_gateway>(f, chain.back()->port()));
  }
  auto client_opts = logless();
  auto client_log = log_recorder::attach(client_opts);
  auto client = dial_resuming(f, chain.back()->port(), client_opts);
  REQUIRE(client);
  vox::client<testbed::service_type> root{caller{client->root}};
  testbed::scenario_context ctx{f.sys, f.self, root};
  CHECK(check_scenarios(ctx, true, "after a break: ") == 2);
  CHECK(f.info(client->actor).resumes == 2); // one cut per method, passed on to the client
  for (auto& gw : chain)
    CHECK(f.info(gw->upstream.actor).resumes == 2);
  CHECK((*srv)->sessions_started() == 1); // the upstream session resumed, never replaced
  // Schemas started over on every resumed link: every other scenario still passes.
  CHECK(check_scenarios(ctx, false, "after the breaks: ") > 25);
}

TEST_CASE("a link break upstream of a forwarding server with a session per client reaches the client",
          "[gateway][testbed][retry]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, cutting_testbed_server(std::make_shared<testbed::item_breaker>(20)));
  REQUIRE(srv);
  auto port = (*srv)->port();
  auto cfg = gateway_config();
  forward_sessions(f.sys, cfg, [&f, port](const connection_settings& client) -> caf::expected<session_handle> {
    auto opts = logless();
    opts.settings = client;
    return dial_resuming(f, port, opts);
  });
  auto gw = session_server::start(f.sys, cfg);
  REQUIRE(gw);
  auto client = dial_resuming(f, (*gw)->port());
  REQUIRE(client);
  vox::client<testbed::service_type> root{caller{client->root}};
  testbed::scenario_context ctx{f.sys, f.self, root};
  CHECK(check_scenarios(ctx, true) == 2);
  CHECK(f.info(client->actor).resumes == 2);
  CHECK((*srv)->sessions_started() == 1);
}

// The other direction: the client's link breaks, the client resumes with the gateway, and
// the splice cuts the upstream link so that the server ends what the client ended.
TEST_CASE("a client's link break reaches the upstream server through a splice, and calls go on after both resume",
          "[gateway][testbed][retry]") {
  actor_fixture f;
  auto cfg = testbed_server();
  cfg.options.resumable = true;
  cfg.options.retry = true;
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  shared_gateway gw{f, (*srv)->port()};
  link_ptr first;
  auto client = dial_resuming(f, gw.port(), logless(), &first);
  REQUIRE(client);
  vox::client<testbed::service_type> root{caller{client->root}};
  testbed::scenario_context ctx{f.sys, f.self, root};
  CHECK(check_scenarios(ctx, false, "before: ") > 25);
  first->abort();
  CHECK(gw.upstream_log->wait_for("resumed on"));
  CHECK(f.info(gw.upstream.actor).resumes == 1);
  CHECK(check_scenarios(ctx, false, "after: ") > 25);
  CHECK(f.info(client->actor).resumes == 1);
}

// Breaks at random moments, mostly inside a frame, between the gateway and the server:
// every one must reach the client, and every call must still get exactly its answer
// (sent again by the client after its resume, forwarded again by the splice, run once
// by the server's operation store).
TEST_CASE("calls through a gateway whose upstream link is cut at random each get exactly their answer",
          "[gateway][retry][fault]") {
  actor_fixture f;
  auto cfg = testbed_server();
  cfg.options.resumable = true;
  cfg.options.retry = true;
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  auto seed = std::random_device{}();
  INFO("proxy seed " << seed);
  // Each handshake carries about 10 KiB (the Message schema, both ways): every budget must
  // let the first one through, or the gateway could not start.
  cutting_proxy proxy{(*srv)->port(), 16 << 10, 48 << 10, seed};
  REQUIRE(proxy.port() != 0);
  shared_gateway gw{f, proxy.port()};
  auto client = dial_resuming(f, gw.port());
  REQUIRE(client);
  vox::client<testbed::service_type> tb{caller{client->root}};
  constexpr int threads = 4;
  constexpr int calls = 1000;
  std::atomic<int> wrong{0};
  std::mutex mtx;
  std::string first_failure;
  std::vector<std::future<void>> callers;
  for (int t = 0; t < threads; ++t)
    callers.push_back(std::async(std::launch::async, [&, t] {
      caf::scoped_actor self{f.sys};
      for (int j = 0; j < calls && wrong == 0; ++j) {
        uint64_t v = uint64_t(t) << 32 | uint64_t(j);
        auto r = tb.call<testbed::m::echo_u64>(self, {v}, std::chrono::seconds{30});
        if (!r || !r->is_ok() || r->ok() != v) {
          if (wrong++ == 0) {
            std::lock_guard<std::mutex> guard{mtx};
            first_failure = "call " + std::to_string(v) + ": " + (r ? std::string{"wrong answer"} : describe(r.error()));
          }
        }
      }
    }));
  for (auto& c : callers)
    c.get();
  INFO(first_failure);
  CHECK(wrong == 0);
  INFO("cuts " << proxy.cuts() << ", inside frames " << proxy.cuts_inside_frames());
  CHECK(proxy.cuts() >= 3);
  // Each cut the upstream session survived reached the client as a resume of its own.
  CHECK(f.info(gw.upstream.actor).resumes >= 3);
  CHECK(f.info(client->actor).resumes >= 3);
  CHECK((*srv)->sessions_started() == 1);
}
