// Sessions over the stable conduit (session-behaviours.md §3.10, DT tests): everything
// above the link is the same as over the bare conduit.
#include <catch2/catch.hpp>

#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

session_options over_stable(session_options o) {
  o.conduit = conduit_mode::stable;
  return o;
}

} // namespace

// r[verify stable]
TEST_CASE("calls through the stable conduit reach the handler, on the root and on a virtual connection",
          "[actors][stable]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto server = serving(echo_handler());
  server.acceptor = echo_acceptor();
  auto pair = make_session_pair(f, link_pair(kind), over_stable(logless()), server);
  CHECK(f.info(pair.client.actor).link.rfind("stable over ", 0) == 0);
  CHECK(f.info(pair.server.actor).link.rfind("stable over ", 0) == 0);
  caller root{pair.client.root};
  for (uint8_t i = 0; i < 10; ++i) {
    auto r = f.call(root, 7, payload{byte_buffer{i}});
    REQUIRE(r);
    CHECK(r->ret == payload{byte_buffer{0x00, i}});
  }
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  auto r = f.call(caller{*conn}, 7, payload{byte_buffer{42}});
  REQUIRE(r);
  CHECK(r->ret == payload{byte_buffer{0x00, 42}});
}

TEST_CASE("an acceptor that does not take the stable conduit rejects it in the prologue", "[actors][stable]") {
  actor_fixture f;
  auto server = logless();
  server.accept_stable = false;
  auto links = make_memory_link_pair();
  auto accepted = std::async(std::launch::async, [&] { return accept_session(f.sys, links.second, server); });
  auto client = connect_session(f.sys, links.first, over_stable(logless()));
  REQUIRE_FALSE(client);
  CHECK(is(client.error(), errc::prologue_rejected));
  CHECK_FALSE(accepted.get());
}

TEST_CASE("a resumable initiator over the stable conduit is refused with a clear error", "[actors][stable]") {
  actor_fixture f;
  auto opts = over_stable(logless());
  opts.resumable = true;
  auto links = make_memory_link_pair();
  auto client = connect_session(f.sys, links.first, opts);
  REQUIRE_FALSE(client);
  CHECK(is(client.error(), errc::invalid_request));
}
