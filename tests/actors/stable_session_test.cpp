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

namespace {

/// Dials `port` and remembers the newest TCP link, so the test can cut it.
struct cuttable_dialer {
  uint16_t port;
  std::mutex mtx;
  link_ptr current;
  size_t dialled = 0;

  caf::expected<link_ptr> dial() {
    uint16_t to = 0;
    {
      std::lock_guard<std::mutex> guard{mtx};
      to = port;
    }
    auto lnk = tcp_connect("127.0.0.1", to);
    if (lnk) {
      std::lock_guard<std::mutex> guard{mtx};
      current = *lnk;
      ++dialled;
    }
    return lnk;
  }
  /// Cuts the current link, as a network failure would (no goodbye).
  void cut() {
    std::lock_guard<std::mutex> guard{mtx};
    current->abort();
  }
  size_t dials() {
    std::lock_guard<std::mutex> guard{mtx};
    return dialled;
  }
};

struct stable_server {
  actor_fixture& f;
  std::unique_ptr<session_server> srv;
  std::shared_ptr<cuttable_dialer> dialer;
  session_handle client;

  stable_server(actor_fixture& fx, call_handler handler) : f(fx) {
    session_server::config cfg;
    cfg.options = serving(std::move(handler));
    auto started = session_server::start(f.sys, cfg);
    REQUIRE(started);
    srv = std::move(*started);
    dialer = std::make_shared<cuttable_dialer>();
    dialer->port = srv->port();
    auto opts = over_stable(logless());
    opts.reconnect = [d = dialer] { return d->dial(); };
    auto first = dialer->dial();
    REQUIRE(first);
    auto s = connect_session(f.sys, *first, opts);
    REQUIRE(s);
    client = f.track(*s);
  }
};

} // namespace

// r[verify stable.reconnect]
// r[verify stable.reconnect.server-replay]
// r[verify stable.link-source]
TEST_CASE("over the stable conduit a pending call and the calls after it survive a cut TCP link: the initiator "
          "dials again and the server's conduit takes the new link",
          "[actors][stable][tcp]") {
  actor_fixture f;
  auto sinks = std::make_shared<std::vector<reply_sink>>();
  auto mtx = std::make_shared<std::mutex>();
  auto cv = std::make_shared<std::condition_variable>();
  stable_server s{f, [=](incoming_call in, reply_sink sink) {
                    if (in.args == payload{byte_buffer{1}}) { // held until the test releases it
                      std::lock_guard<std::mutex> guard{*mtx};
                      sinks->push_back(std::move(sink));
                      cv->notify_all();
                      return;
                    }
                    echo_handler()(std::move(in), std::move(sink));
                  }};
  caller root{s.client.root};
  auto held = f.async([root](caf::scoped_actor& a) { return actor_fixture::call_with(a, root, 7, payload{byte_buffer{1}}); });
  {
    std::unique_lock<std::mutex> guard{*mtx};
    REQUIRE(cv->wait_for(guard, wait_bound, [&] { return !sinks->empty(); }));
  }
  s.dialer->cut();
  for (uint8_t i = 10; i < 20; ++i) { // sent while the link is down or coming back
    auto r = f.call(root, 7, payload{byte_buffer{i}});
    REQUIRE(r);
    CHECK(r->ret == payload{byte_buffer{0x00, i}});
  }
  {
    std::lock_guard<std::mutex> guard{*mtx};
    sinks->front().reply(payload{byte_buffer{0x00, 0x2a}});
  }
  auto r = held.get();
  REQUIRE(r);
  CHECK(r->ret == payload{byte_buffer{0x00, 0x2a}});
  CHECK(s.dialer->dials() == 2);
  CHECK(s.srv->sessions_started() == 1);
  CHECK(f.info(s.client.actor).connected);
}

TEST_CASE("over the stable conduit 2,000 calls each get exactly their answer across 20 cuts of the TCP link",
          "[actors][stable][tcp]") {
  actor_fixture f;
  stable_server s{f, echo_handler()};
  caller root{s.client.root};
  for (int i = 0; i < 2000; ++i) {
    if (i % 100 == 50)
      s.dialer->cut();
    byte_buffer args{static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)};
    auto r = f.call(root, 7, payload{args});
    REQUIRE(r);
    CHECK(r->ret == payload{byte_buffer{0x00, args[0], args[1]}});
  }
  CHECK(s.dialer->dials() == 21);
  CHECK(s.srv->sessions_started() == 1);
}

TEST_CASE("a stable initiator that cannot reconnect ends its session with session_lost", "[actors][stable][tcp]") {
  actor_fixture f;
  stable_server s{f, echo_handler()};
  {
    // Nothing listens on the port the dialer uses from now on: every attempt fails.
    auto gone = tcp_listener::bind("127.0.0.1", 0);
    REQUIRE(gone);
    std::lock_guard<std::mutex> guard{s.dialer->mtx};
    s.dialer->port = (*gone)->port();
  }
  f.self->monitor(s.client.actor);
  s.dialer->cut();
  caf::error why;
  bool down = false;
  f.self->receive([&](caf::down_msg& d) { why = d.reason, down = true; },
                  caf::after(std::chrono::seconds{20}) >> [] {});
  REQUIRE(down);
  INFO(describe(why));
  CHECK(is(why, errc::session_lost));
  CHECK(s.dialer->dials() == 1);
}
