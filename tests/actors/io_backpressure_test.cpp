// Sessions on the event-driven I/O path: a peer that stops reading costs only its own
// session, which ends with a clear error, while every other session keeps being served.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>

#include <sys/socket.h>

#include "actors/session_server.hpp"
#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"
#include "transport/prologue.hpp"
#include "transport/socket_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// One echo call on a fresh, well-behaved session.
void served(actor_fixture& f, uint16_t port) {
  auto lnk = tcp_connect("127.0.0.1", port);
  REQUIRE(lnk);
  auto s = connect_session(f.sys, *lnk, logless());
  REQUIRE(s);
  f.track(*s);
  caller c{s->root};
  auto r = f.call(c, 7, payload{1, 2, 3});
  REQUIRE(r);
  CHECK(r->ret == payload{0, 1, 2, 3});
}

} // namespace

TEST_CASE("a peer that stops reading is cut off with backpressure while other sessions are served",
          "[actors][io]") {
  actor_fixture f;
  session_server::config cfg;
  cfg.options = serving(echo_handler());
  cfg.links.max_outbound_bytes = 256 * 1024;
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<session_actor> accepted;
  cfg.on_session = [&](const session_handle& h) {
    std::lock_guard<std::mutex> guard{mtx};
    accepted.push_back(h.actor);
    cv.notify_all();
  };
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  auto port = (*srv)->port();
  served(f, port);

  // A client that sends calls and never reads a single answer.
  auto raw = raw_connect(port);
  REQUIRE(raw);
  int small = 4096;
  ::setsockopt(raw.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  auto lnk = make_socket_link(unique_fd{::dup(raw.get())}, "stubborn");
  REQUIRE(initiate_transport(*lnk, conduit_mode::bare));
  REQUIRE(handshake_as_initiator(*lnk, handshake_options{}));
  session_actor stubborn;
  {
    std::unique_lock<std::mutex> guard{mtx};
    REQUIRE(cv.wait_for(guard, wait_bound, [&] { return accepted.size() == 2; }));
    stubborn = accepted.back();
  }
  f.self->monitor(stubborn);
  payload args(16 * 1024, 0x5a);
  // 64 MiB of answers: far beyond the 256 KiB queue plus every socket buffer. Our own
  // sends stop mattering once the server has cut us off.
  for (uint64_t id = 1; id < 8192; id += 2)
    if (!lnk->send(encode_message(message{0, request_message{id, request_call{7, {}, args, {}}}})))
      break;
  std::optional<caf::error> reason;
  f.self->receive([&](caf::down_msg& dm) { reason = dm.reason; }, caf::after(wait_bound * 4) >> [] {});
  REQUIRE(reason);
  CHECK(is(*reason, errc::backpressure));
  // Everyone else is still served, by the same server and I/O thread.
  served(f, port);
  lnk->abort();
}
