// Sessions on the event-driven I/O path: a peer that stops reading costs only its own
// session, which ends with a clear error, while every other session keeps being served.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <sys/socket.h>

#include <caf/event_based_actor.hpp>

#include "actors/channel.hpp"
#include "actors/service.hpp"
#include "actors/session_server.hpp"
#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"
#include "transport/prologue.hpp"
#include "transport/socket_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using upload = method<"upload", void(rx<std::string>)>;
using uploads = service<"Uploads", upload>;

/// Soft limits of 64 KiB / 16 KiB under a hard limit of `max_outbound` bytes.
link_options soft_limits(size_t max_outbound) {
  link_options opts;
  opts.high_water_bytes = 64 * 1024;
  opts.low_water_bytes = 16 * 1024;
  opts.max_outbound_bytes = max_outbound;
  return opts;
}

/// Waits (bounded) until `lnk` reports itself congested.
bool becomes_congested(const link_ptr& lnk) {
  return eventually([&] { return lnk->congested(); });
}

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
  // The stubborn client below sends 4,096 calls without waiting. Under a request limit it
  // would be cut for exceeding that, whenever the server's handlers fall behind the reads;
  // this test is about the outbound queue, so the limit is out of reach.
  cfg.options.settings.max_concurrent_requests = 8192;
  accepted_sessions accepted;
  accepted.hook(cfg);
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  auto port = (*srv)->port();
  served(f, port);

  // A client that sends calls and never reads a single answer.
  auto raw = raw_connect(port);
  REQUIRE(raw);
  int small = 4096;
  ::setsockopt(raw.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  // Our sends stop (EAGAIN) rather than block forever should the server stop reading
  // without cutting us off; the checks below then say what happened instead.
  timeval send_bound{};
  send_bound.tv_sec = 10;
  ::setsockopt(raw.get(), SOL_SOCKET, SO_SNDTIMEO, &send_bound, sizeof(send_bound));
  auto lnk = make_socket_link(unique_fd{::dup(raw.get())}, "stubborn");
  REQUIRE(initiate_transport(*lnk, conduit_mode::bare));
  REQUIRE(handshake_as_initiator(*lnk, handshake_options{}));
  auto stubborn = accepted.wait_for(2); // after the one `served` made
  REQUIRE(stubborn);
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
  INFO("the server session ended with " << describe(*reason));
  CHECK(is(*reason, errc::backpressure));
  // Everyone else is still served, by the same server and I/O thread.
  served(f, port);
  lnk->abort();
}

TEST_CASE("a peer that reads slowly holds our calls back at the link's high-water mark instead "
          "of ending the session",
          "[actors][io]") {
  actor_fixture f;
  // 1 MiB: what 2,000 calls of 16 KiB would pass 30 times over.
  auto links = tcp_link_pair(soft_limits(1024 * 1024));
  auto ours = links.first;
  // The peer sets no request limit, so only the link can hold calls back.
  auto peer = make_raw_peer(f, session_role::initiator, logless(), std::move(links), {64, 0});
  caller c{peer.session.root};
  constexpr int calls = 2000;
  struct tally {
    std::mutex mtx;
    std::condition_variable cv;
    int ok = 0;
    std::vector<caf::error> failures;
  };
  auto t = std::make_shared<tally>();
  f.sys.spawn(
    [](caf::event_based_actor* self, driver_actor driver, std::shared_ptr<tally> t) {
      payload args(16 * 1024, 0x42);
      for (int i = 0; i < calls; ++i)
        self->request(driver, caf::infinite, call_atom::value, outgoing_call{7, {}, args})
          .then(
            [t](call_response&) {
              std::lock_guard<std::mutex> guard{t->mtx};
              ++t->ok;
              t->cv.notify_all();
            },
            [t](caf::error& e) {
              std::lock_guard<std::mutex> guard{t->mtx};
              t->failures.push_back(e);
              t->cv.notify_all();
            });
    },
    c.driver(), t);
  // The peer reads nothing until our link is congested.
  REQUIRE(becomes_congested(ours));
  // Now it reads and answers every call; each one completes, none fails.
  for (int i = 0; i < calls; ++i) {
    auto req = peer.recv_as<request_message>();
    REQUIRE(req);
    REQUIRE(std::holds_alternative<request_call>(req->second.body));
    peer.send(message{0, request_message{req->second.id, request_response{{}, payload{0}, {}}}});
  }
  std::unique_lock<std::mutex> guard{t->mtx};
  REQUIRE(t->cv.wait_for(guard, wait_bound, [&] { return t->ok + static_cast<int>(t->failures.size()) == calls; }));
  CHECK(t->failures.empty());
  CHECK(t->ok == calls);
  CHECK_FALSE(ours->congested());
}

TEST_CASE("a channel sender with a huge grant is held at the link's high-water mark instead of "
          "overrunning the outbound queue",
          "[actors][io][channels]") {
  actor_fixture f;
  // 4 MiB: 2,000 items of 16 KiB would pass it 8 times over.
  auto links = tcp_link_pair(soft_limits(4 * 1024 * 1024));
  auto ours = links.first;
  auto peer = make_raw_peer(f, session_role::initiator, logless(), std::move(links));
  client<uploads> c{caller{peer.session.root}};
  auto [out, in] = channel<std::string>();
  caf::anon_send(c.get_caller().driver(), call_atom::value, *c.make_call<upload>({in}));
  REQUIRE(peer.recv_as<request_message>());
  // Credit for every item at once: only the link can hold the sender back now.
  constexpr int items = 2000;
  peer.send(message{0, channel_message{1, channel_grant_credit{items}}});
  auto sender = std::async(std::launch::async, [out = out] {
    std::string item(16 * 1024, 'x');
    for (int i = 0; i < items; ++i)
      if (auto sent = out.send_for(item, wait_bound); !sent)
        return sent.error();
    return caf::error{};
  });
  // The peer reads nothing until our link is congested, then everything.
  REQUIRE(becomes_congested(ours));
  for (int i = 0; i < items; ++i) {
    auto item = peer.recv_as<channel_message>();
    REQUIRE(item);
    REQUIRE(std::holds_alternative<channel_item>(item->second.body));
  }
  REQUIRE(sender.wait_for(wait_bound) == std::future_status::ready);
  CHECK(sender.get() == caf::error{});
  CHECK_FALSE(ours->congested());
}
