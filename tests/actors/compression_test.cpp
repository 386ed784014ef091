// Sessions over zstd-compressed links (README "Compressed links"): negotiated in the
// handshake, everything above the link unchanged.
#include <catch2/catch.hpp>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"
#include "support/session_fixture.hpp"
#include "support/testbed_scenarios.hpp"
#include "support/transport_helpers.hpp"

using namespace vox;
using namespace vox::test;
using namespace vox::testbed;

namespace {

session_options compressing(session_options o, compression_mode mode = compression_mode::prefer) {
  o.compression.mode = mode;
  return o;
}

} // namespace

// r[verify vox-caf.zstd.negotiation]
// r[verify vox-caf.zstd.stream]
TEST_CASE("every client scenario passes over a compressed TCP link, on the bare and the stable conduit",
          "[actors][zstd][testbed]") {
  auto conduit = GENERATE(conduit_mode::bare, conduit_mode::stable);
  INFO("conduit " << (conduit == conduit_mode::stable ? "stable" : "bare"));
  actor_fixture f;
  auto srv = session_server::start(f.sys, testbed_server(compression_mode::prefer));
  REQUIRE(srv);
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto opts = compressing(logless(), compression_mode::require);
  opts.conduit = conduit;
  auto session = connect_session(f.sys, *lnk, opts);
  REQUIRE(session);
  f.track(*session);
  REQUIRE(session->handshake.compression);
  CHECK(f.info(session->actor).link.rfind("zstd over ", 0) == 0);
  vox::client<service_type> root{caller{session->root}};
  scenario_context ctx{f.sys, f.self, root};
  check_scenarios(ctx);
  auto conn = f.open(session->actor, {parity::odd, 64});
  REQUIRE(conn);
  vox::client<service_type> virt{caller{*conn}};
  scenario_context vctx{f.sys, f.self, virt};
  auto echo = scenarios().front();
  INFO("virtual " << echo.name);
  CHECK_FALSE(echo.run(vctx));
}

TEST_CASE("a session that requires compression is refused clearly by a server without it, and the server "
          "goes on serving",
          "[actors][zstd]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, testbed_server(compression_mode::off));
  REQUIRE(srv);
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto refused = connect_session(f.sys, *lnk, compressing(logless(), compression_mode::require));
  REQUIRE_FALSE(refused);
  CHECK(is(refused.error(), errc::compression_refused));
  // prefer falls back to an uncompressed session on the first link.
  auto again = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(again);
  auto session = connect_session(f.sys, *again, compressing(logless(), compression_mode::prefer));
  REQUIRE(session);
  f.track(*session);
  CHECK_FALSE(session->handshake.compression);
  CHECK(f.info(session->actor).link.rfind("tcp ", 0) == 0);
  vox::client<service_type> root{caller{session->root}};
  scenario_context ctx{f.sys, f.self, root};
  CHECK_FALSE(scenarios().front().run(ctx));
}

TEST_CASE("a server that requires compression refuses a session that does not offer it, with a reason",
          "[actors][zstd]") {
  actor_fixture f;
  auto srv = session_server::start(f.sys, testbed_server(compression_mode::require));
  REQUIRE(srv);
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto refused = connect_session(f.sys, *lnk, logless());
  REQUIRE_FALSE(refused);
  CHECK(is(refused.error(), errc::handshake_failed));
  CHECK_THAT(describe(refused.error()), Catch::Contains("requires zstd compression"));
}

TEST_CASE("a resumed session compresses its new link afresh", "[actors][zstd][resume]") {
  actor_fixture f;
  auto server_opts = compressing(serving(echo_handler()));
  server_opts.resumable = true;
  auto srv_cfg = session_server::config{};
  srv_cfg.options = server_opts;
  auto srv = session_server::start(f.sys, srv_cfg);
  REQUIRE(srv);
  auto client_opts = compressing(logless());
  client_opts.resumable = true;
  auto client_log = log_recorder::attach(client_opts);
  auto lnk = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(lnk);
  auto session = connect_session(f.sys, *lnk, client_opts);
  REQUIRE(session);
  f.track(*session);
  caller root{session->root};
  REQUIRE(f.call(root, 7, payload{byte_buffer{1}}));
  (*lnk)->abort();
  REQUIRE(client_log->wait_for("link lost"));
  auto fresh = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(fresh);
  REQUIRE(resume_session(f.sys, session->actor, *fresh, client_opts));
  CHECK(f.info(session->actor).link.rfind("zstd over ", 0) == 0);
  auto r = f.call(root, 7, payload{byte_buffer{2}});
  REQUIRE(r);
  CHECK(r->ret == payload{byte_buffer{0x00, 2}});
}

TEST_CASE("a session over a unix socket compresses its link like one over tcp", "[actors][zstd]") {
  actor_fixture f;
  temp_dir dir;
  auto pair = make_session_pair(f, unix_link_pair((dir.path() / "vox.sock").string()),
                                compressing(serving(echo_handler())), compressing(serving(echo_handler())));
  CHECK(f.info(pair.client.actor).link.rfind("zstd over ", 0) == 0);
  CHECK(f.info(pair.server.actor).link.rfind("zstd over ", 0) == 0);
  caller c{pair.client.root};
  byte_buffer big(200 * 1024, 0x5a); // several reads of the socket, a few bytes compressed
  auto r = f.call(c, 5, payload{big});
  REQUIRE(r);
  REQUIRE(r->ret.size() == big.size() + 1);
  CHECK(std::equal(big.begin(), big.end(), r->ret.begin() + 1));
}
