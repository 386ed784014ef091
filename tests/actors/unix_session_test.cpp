// Sessions over Unix-domain sockets share the I/O reactor with TCP links.
#include <catch2/catch.hpp>

#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"

using namespace vox;
using namespace vox::test;

TEST_CASE("sessions over a unix socket and over tcp are served by the same I/O thread", "[actors][io]") {
  actor_fixture f;
  auto threads = thread_count();
  temp_dir dir;
  auto over_unix = make_session_pair(f, unix_link_pair((dir.path() / "vox.sock").string()),
                                     serving(echo_handler()), serving(echo_handler()));
  auto over_tcp = make_session_pair(f, tcp_link_pair(), serving(echo_handler()), serving(echo_handler()));
  for (auto* pair : {&over_unix, &over_tcp}) {
    caller c{pair->client.root};
    auto r = f.call(c, 5, payload{4, 2});
    REQUIRE(r);
    CHECK(r->ret == payload{0, 4, 2});
    caller back{pair->server.root};
    REQUIRE(f.call(back, 6, payload{1}));
  }
  // Four started links and sessions: the one I/O thread of the actor system's reactor,
  // and no thread for any link.
  CHECK(thread_count() <= threads + 1);
}
