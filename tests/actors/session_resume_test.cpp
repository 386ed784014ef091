// Resumable sessions (session-behaviours.md §1E, §3.7): what survives a broken link, manual
// and automatic resume, the acceptor's registry, and the ways a resume is refused.
#include <condition_variable>
#include <mutex>

#include <catch2/catch.hpp>

#include "actors/service.hpp"
#include "actors/session_server.hpp"
#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"
#include "transport/socket_link.hpp"
#include "transport/handshake_exchange.hpp"
#include "transport/prologue.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// Calls the handler keeps unanswered until the test releases them.
struct held_calls {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::pair<payload, reply_sink>> calls;
  int runs = 0;

  call_handler handler() {
    return [this](incoming_call in, reply_sink sink) {
      std::lock_guard<std::mutex> guard{mtx};
      calls.emplace_back(std::move(in.args), std::move(sink));
      ++runs;
      cv.notify_all();
    };
  }

  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, wait_bound, [&] { return calls.size() >= n; });
  }

  /// Answers every held call with its arguments (as echo_handler does).
  void release() {
    std::vector<std::pair<payload, reply_sink>> taken;
    {
      std::lock_guard<std::mutex> guard{mtx};
      taken.swap(calls);
    }
    for (auto& [args, sink] : taken) {
      payload ret{0x00};
      ret.insert(ret.end(), args.begin(), args.end());
      sink.reply(std::move(ret));
    }
  }
};

session_options resumable(session_options o, std::shared_ptr<session_registry> registry = nullptr) {
  o.resumable = true;
  o.registry = std::move(registry);
  return o;
}

/// Resumes both ends of a manual pair on `links` at once (each side blocks in its handshake).
std::pair<caf::expected<void>, caf::expected<session_handle>>
resume_both(actor_fixture& f, const session_pair& pair, std::pair<link_ptr, link_ptr> links,
            const session_options& client_opts, const session_options& server_opts) {
  auto server = std::async(std::launch::async, [&] { return accept_session(f.sys, links.second, server_opts); });
  auto client = resume_session(f.sys, pair.client.actor, links.first, client_opts);
  return {std::move(client), server.get()};
}

using echo = method<"echo", std::string(std::string)>;
using echo_service = service<"Echo", echo>;

call_handler echo_service_handler() {
  service_dispatcher<echo_service> d;
  d.on<echo>([](std::string s, responder<echo_service, echo> r) { r.ok(std::move(s)); });
  return d.handler();
}

/// A session_server serving `handler` on the root, resumable, and a dialer for it.
struct resumable_server {
  std::unique_ptr<session_server> server;

  explicit resumable_server(caf::actor_system& sys, call_handler handler,
                            std::chrono::milliseconds resume_timeout = std::chrono::milliseconds{30000}) {
    session_server::config cfg;
    cfg.options = resumable(serving(std::move(handler)));
    cfg.options.resume_timeout = resume_timeout;
    auto started = session_server::start(sys, std::move(cfg));
    if (!started)
      throw std::runtime_error(describe(started.error()));
    server = std::move(*started);
  }

  std::function<caf::expected<link_ptr>()> dialer() const {
    return [port = server->port()]() -> caf::expected<link_ptr> { return tcp_connect("127.0.0.1", port); };
  }
};

/// A resumable client session on a fresh TCP link to `port`; `link` is kept so the test can break it.
struct dialed {
  link_ptr link;
  session_handle session;
};

dialed dial(actor_fixture& f, const resumable_server& srv, session_options opts) {
  auto lnk = srv.dialer()();
  if (!lnk)
    throw std::runtime_error(describe(lnk.error()));
  auto s = connect_session(f.sys, *lnk, std::move(opts));
  if (!s)
    throw std::runtime_error(describe(s.error()));
  return {*lnk, f.track(std::move(*s))};
}

} // namespace

// r[verify session.handshake.resume]
// r[verify session.outlives-conduit]
TEST_CASE("a pending call survives a manual resume on a new link", "[actors][resume]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  held_calls held;
  auto registry = std::make_shared<session_registry>();
  auto client_opts = resumable(logless());
  client_opts.keepalive = keepalive_options{std::chrono::seconds{10}, std::chrono::seconds{30}};
  auto server_opts = resumable(serving(held.handler()), registry);
  auto client_log = log_recorder::attach(client_opts);
  auto server_log = log_recorder::attach(server_opts);
  auto links = link_pair(kind);
  auto pair = make_session_pair(f, links, client_opts, server_opts);
  REQUIRE(pair.server.handshake.session_resume_key);
  auto first_keepalive = f.info(pair.client.actor).keepalive;
  REQUIRE(first_keepalive);
  auto first_key = f.info(pair.client.actor).resume_key;
  REQUIRE(first_key == pair.server.handshake.session_resume_key);

  caller root{pair.client.root};
  auto pending = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, root, 1, {0x37}); });
  REQUIRE(held.wait_for(1));

  links.first->abort(); // the network goes away under both sessions
  REQUIRE(client_log->wait_for("link lost"));
  REQUIRE(server_log->wait_for("link lost"));
  // Behaviour 66: no keepalive without a link (its Pings could only time out).
  CHECK_FALSE(f.info(pair.client.actor).keepalive);

  auto [client_resumed, server_resumed] = resume_both(f, pair, link_pair(kind), client_opts, server_opts);
  REQUIRE(client_resumed);
  REQUIRE(server_resumed);
  CHECK(server_resumed->resumed);
  CHECK(server_resumed->actor == pair.server.actor);

  held.release(); // the handler answers after the resume: the Response takes the new link
  REQUIRE(pending.wait_for(wait_bound) == std::future_status::ready);
  auto r = pending.get();
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 0x37});
  CHECK(held.runs == 1);

  auto ci = f.info(pair.client.actor);
  CHECK(ci.connected);
  CHECK(ci.resumes == 1);
  // Behaviour 41: the acceptor issued a fresh key, which both sides now hold.
  CHECK(ci.resume_key != first_key);
  CHECK(ci.resume_key == f.info(pair.server.actor).resume_key);
  // A fresh keepalive runs on the new link.
  CHECK(ci.keepalive);
  CHECK(ci.keepalive != first_keepalive);
  // And the session goes on as before.
  auto again = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, root, 2, {0x01}); });
  REQUIRE(held.wait_for(1));
  held.release();
  REQUIRE(again.wait_for(wait_bound) == std::future_status::ready);
  CHECK(again.get());
}

TEST_CASE("a virtual connection survives a resume, and its first call after it carries schemas the peer accepts",
          "[actors][resume]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  auto registry = std::make_shared<session_registry>();
  auto client_opts = resumable(logless());
  auto server_opts = resumable(serving(echo_service_handler()), registry);
  server_opts.acceptor = [](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, echo_service_handler(), {}};
  };
  auto client_log = log_recorder::attach(client_opts);
  auto server_log = log_recorder::attach(server_opts);
  auto links = link_pair(kind);
  auto pair = make_session_pair(f, links, client_opts, server_opts);
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  client<echo_service> root{caller{pair.client.root}};
  client<echo_service> v{caller{*conn}};
  REQUIRE(root.call<echo>(f.self, {"before"}, wait_bound));
  REQUIRE(v.call<echo>(f.self, {"before"}, wait_bound)); // schemas went out on both connections

  links.first->abort();
  REQUIRE(client_log->wait_for("link lost"));
  REQUIRE(server_log->wait_for("link lost"));
  auto [c, s] = resume_both(f, pair, link_pair(kind), client_opts, server_opts);
  REQUIRE(c);
  REQUIRE(s);

  // Pitfall 3: the caller sends the schemas again on every connection, and the server
  // forgot what it received on every connection, so this is no duplicate.
  auto after = v.call<echo>(f.self, {"after"}, wait_bound);
  REQUIRE(after);
  CHECK(after->ok() == "after");
  auto root_after = root.call<echo>(f.self, {"root after"}, wait_bound);
  REQUIRE(root_after);
  CHECK(root_after->ok() == "root after");
  CHECK(f.info(pair.server.actor).active_connections == 2);
}

TEST_CASE("open and close fail with the reference's errors while the session is disconnected", "[actors][resume]") {
  actor_fixture f;
  auto server = resumable(serving(echo_handler()), std::make_shared<session_registry>());
  server.acceptor = echo_acceptor();
  auto client_opts = resumable(logless());
  auto client_log = log_recorder::attach(client_opts);
  auto links = make_memory_link_pair();
  auto pair = make_session_pair(f, links, client_opts, server);
  auto conn = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE(conn);
  links.first->abort();
  REQUIRE(client_log->wait_for("link lost"));

  auto opened = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE_FALSE(opened);
  CHECK(describe(opened.error()).find("session is disconnected; resume before opening connections")
        != std::string::npos);
  auto closed = f.close(pair.client.actor, conn->id);
  REQUIRE(closed);
  CHECK(describe(closed).find("session is disconnected; resume before closing connections") != std::string::npos);
  // The connection is still there for after the resume.
  CHECK(f.info(pair.client.actor).active_connections == 2);
}

TEST_CASE("a resume with changed settings is refused and the session stays disconnected", "[actors][resume]") {
  actor_fixture f;
  auto registry = std::make_shared<session_registry>();
  auto client_opts = resumable(logless());
  auto server_opts = resumable(serving(echo_handler()), registry);
  auto client_log = log_recorder::attach(client_opts);
  auto server_log = log_recorder::attach(server_opts);
  auto links = make_memory_link_pair();
  auto pair = make_session_pair(f, links, client_opts, server_opts);
  links.first->abort();
  REQUIRE(client_log->wait_for("link lost"));
  REQUIRE(server_log->wait_for("link lost"));

  SECTION("our own settings changed (behaviour 39)") {
    auto changed = client_opts;
    changed.settings.max_concurrent_requests = 7;
    auto [c, s] = resume_both(f, pair, make_memory_link_pair(), changed, server_opts);
    REQUIRE_FALSE(c);
    CHECK(is(c.error(), errc::resume_refused));
    CHECK(describe(c.error()).find("local root settings changed across session resume") != std::string::npos);
    // The server saw the initiator's settings change too (behaviour 40).
    REQUIRE_FALSE(s);
    CHECK(describe(s.error()).find("peer root settings changed across session resume") != std::string::npos);
  }
  SECTION("the peer's settings changed (behaviour 40)") {
    auto changed = server_opts;
    changed.settings.max_concurrent_requests = 9;
    auto [c, s] = resume_both(f, pair, make_memory_link_pair(), client_opts, changed);
    REQUIRE_FALSE(c);
    CHECK(describe(c.error()).find("peer root settings changed across session resume") != std::string::npos);
  }
  CHECK_FALSE(f.info(pair.client.actor).connected);
  CHECK_FALSE(f.info(pair.server.actor).connected);
  // A correct resume still works afterwards.
  auto [c, s] = resume_both(f, pair, make_memory_link_pair(), client_opts, server_opts);
  REQUIRE(c);
  REQUIRE(s);
  CHECK(f.call(caller{pair.client.root}, 1, {0x05}));
}

TEST_CASE("a pending call survives an automatic reconnect through a link source", "[actors][resume][tcp]") {
  actor_fixture f;
  held_calls held;
  resumable_server srv{f.sys, held.handler()};
  auto opts = resumable(logless());
  opts.reconnect = srv.dialer();
  auto client_log = log_recorder::attach(opts);
  auto client = dial(f, srv, opts);
  caller root{client.session.root};
  auto pending = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, root, 1, {0x42}); });
  REQUIRE(held.wait_for(1));

  client.link->abort(); // nobody but the session itself brings it back
  REQUIRE(client_log->wait_for("resumed on"));
  CHECK(f.info(client.session.actor).resumes == 1);
  held.release();
  REQUIRE(pending.wait_for(wait_bound) == std::future_status::ready);
  auto r = pending.get();
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 0x42});
  CHECK(held.runs == 1);
}

// Pitfall 6: the acceptor issues a new key on every handshake; the registry and the
// session's key follow it, so every later resume presents a key that works.
TEST_CASE("three resumes in a row through the server's registry work", "[actors][resume][tcp]") {
  actor_fixture f;
  resumable_server srv{f.sys, echo_handler()};
  // The link source remembers what it dialled, so the test can break each new link.
  std::mutex mtx;
  link_ptr latest;
  auto opts = resumable(logless());
  opts.reconnect = [&, dial_again = srv.dialer()]() -> caf::expected<link_ptr> {
    auto lnk = dial_again();
    if (lnk) {
      std::lock_guard<std::mutex> guard{mtx};
      latest = *lnk;
    }
    return lnk;
  };
  auto client_log = log_recorder::attach(opts);
  auto client = dial(f, srv, opts);
  latest = client.link;
  caller root{client.session.root};
  std::vector<std::array<uint8_t, session_resume_key_size>> keys{*f.info(client.session.actor).resume_key};
  for (uint64_t round = 1; round <= 3; ++round) {
    INFO("resume " << round);
    {
      std::lock_guard<std::mutex> guard{mtx};
      latest->abort();
    }
    REQUIRE(client_log->wait_for("resumed on", round));
    CHECK(f.info(client.session.actor).resumes == round);
    auto r = f.call(root, round, {static_cast<uint8_t>(round)});
    REQUIRE(r);
    CHECK(r->ret == payload{0x00, static_cast<uint8_t>(round)});
    auto key = f.info(client.session.actor).resume_key;
    REQUIRE(key);
    CHECK(std::find(keys.begin(), keys.end(), *key) == keys.end());
    keys.push_back(*key);
  }
  CHECK(srv.server->sessions_started() == 1);
}

TEST_CASE("a link that breaks in the middle of a frame leaves the session disconnected, and the key resumes it",
          "[actors][resume][tcp]") {
  actor_fixture f;
  session_server::config cfg;
  cfg.options = resumable(serving(echo_handler()));
  auto server_log = log_recorder::attach(cfg.options);
  accepted_sessions accepted;
  accepted.hook(cfg);
  auto srv = session_server::start(f.sys, cfg);
  REQUIRE(srv);
  // A hand-driven initiator: prologue, handshake, then half a frame and a dead socket.
  auto raw = raw_connect((*srv)->port());
  REQUIRE(raw);
  auto lnk = make_socket_link(unique_fd{::dup(raw.get())}, "breaks mid-frame");
  REQUIRE(initiate_transport(*lnk, conduit_mode::bare));
  auto hs = handshake_as_initiator(*lnk, handshake_options{});
  REQUIRE(hs);
  REQUIRE(hs->session_resume_key);
  auto session = accepted.wait_for(1);
  REQUIRE(session);
  auto frame = encode_message(message{0, ping{7}});
  byte_buffer half{0x40, 0x00, 0x00, 0x00}; // announces 64 bytes
  half.insert(half.end(), frame.begin(), frame.end());
  REQUIRE(::send(raw.get(), half.data(), half.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(half.size()));
  lnk->abort();
  raw = unique_fd{};
  REQUIRE(server_log->wait_for("link lost"));
  CHECK_FALSE(f.info(session).connected);

  auto again = tcp_connect("127.0.0.1", (*srv)->port());
  REQUIRE(again);
  REQUIRE(initiate_transport(**again, conduit_mode::bare));
  handshake_options resume;
  resume.resume_key = byte_buffer(hs->session_resume_key->begin(), hs->session_resume_key->end());
  auto rhs = handshake_as_initiator(**again, resume);
  REQUIRE(rhs);
  REQUIRE(server_log->wait_for("resumed on"));
  CHECK(f.info(session).resumes == 1);
  CHECK(f.info(session).connected);
  CHECK((*srv)->sessions_started() == 1);
  (*again)->abort();
}

TEST_CASE("a handshake presenting an unknown resume key gets Sorry, not a fresh session", "[actors][resume][tcp]") {
  actor_fixture f;
  resumable_server srv{f.sys, echo_handler()};
  auto lnk = srv.dialer()();
  REQUIRE(lnk);
  REQUIRE(initiate_transport(**lnk, conduit_mode::bare));
  handshake_options opts;
  opts.resume_key = byte_buffer(session_resume_key_size, 0x5a);
  auto hs = handshake_as_initiator(**lnk, opts);
  REQUIRE_FALSE(hs);
  CHECK(describe(hs.error()).find("unknown session resume key") != std::string::npos);
  CHECK(srv.server->sessions_started() == 0);
}

TEST_CASE("reconnecting gives up after the configured attempts, the session ends and pending calls fail",
          "[actors][resume][tcp]") {
  actor_fixture f;
  held_calls held;
  resumable_server srv{f.sys, held.handler()};
  auto opts = resumable(logless());
  std::atomic<int> dials{0};
  opts.reconnect = [&]() -> caf::expected<link_ptr> {
    ++dials;
    return make_error(errc::io_error, "network unreachable");
  };
  opts.reconnect_policy.max_attempts = 3;
  opts.reconnect_policy.initial_delay = std::chrono::milliseconds{1};
  auto client = dial(f, srv, opts);
  caller root{client.session.root};
  auto pending = f.async([&](caf::scoped_actor& a) { return actor_fixture::call_with(a, root, 1, {0x01}); });
  REQUIRE(held.wait_for(1));
  client.link->abort();
  auto reason = f.wait_down(client.session.actor);
  REQUIRE(reason);
  CHECK(is(*reason, errc::session_lost));
  CHECK(describe(*reason).find("gave up after 3 attempt(s)") != std::string::npos);
  CHECK(describe(*reason).find("network unreachable") != std::string::npos);
  CHECK(dials == 3);
  REQUIRE(pending.wait_for(wait_bound) == std::future_status::ready);
  auto r = pending.get();
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::session_shutdown));
}

TEST_CASE("a disconnected session nobody resumes ends at its deadline and leaves the registry", "[actors][resume]") {
  actor_fixture f;
  auto registry = std::make_shared<session_registry>();
  auto server_opts = resumable(serving(echo_handler()), registry);
  server_opts.resume_timeout = std::chrono::milliseconds{50};
  auto links = make_memory_link_pair();
  auto pair = make_session_pair(f, links, resumable(logless()), server_opts);
  f.info(pair.server.actor); // answered after its first message, which registers it
  REQUIRE(registry->size() == 1);
  links.first->abort();
  auto reason = f.wait_down(pair.server.actor);
  REQUIRE(reason);
  CHECK(is(*reason, errc::session_lost));
  CHECK(registry->size() == 0);
}

TEST_CASE("a session that is not resumable still ends when its link breaks", "[actors][resume]") {
  actor_fixture f;
  auto links = make_memory_link_pair();
  auto pair = make_session_pair(f, links, logless(), serving(echo_handler()));
  CHECK_FALSE(pair.server.handshake.session_resume_key); // nothing to resume with
  links.first->abort();
  CHECK(f.wait_down(pair.server.actor));
  CHECK(f.wait_down(pair.client.actor));
}

TEST_CASE("a resumable initiator refuses an acceptor that sends no resume key", "[actors][resume]") {
  actor_fixture f;
  auto links = make_memory_link_pair();
  auto server = std::async(std::launch::async,
                           [&] { return accept_session(f.sys, links.second, serving(echo_handler())); });
  auto client = connect_session(f.sys, links.first, resumable(logless()));
  REQUIRE_FALSE(client);
  CHECK(is(client.error(), errc::resume_refused));
  CHECK(describe(client.error()).find("peer did not advertise session resumption") != std::string::npos);
  if (auto s = server.get())
    f.track(std::move(*s));
}
