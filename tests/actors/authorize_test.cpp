// Authorization: the acceptor's authorize hook on the root's first call and on opens, the
// peer handlers see (over TCP and mutual TLS), per-method checks of typed services, and
// bearer tokens that never show in a log or a dump.
#include <catch2/catch.hpp>

#include <future>

#include "actors/service.hpp"
#include "support/session_fixture.hpp"
#include "support/tls_certs.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using echo = method<"echo", std::string(std::string)>;
using wipe = method<"wipe", std::string(std::string)>;
using vault = service<"Vault", echo, wipe>;

/// Echo and wipe; counts the calls that reached a handler and keeps the last peer seen.
struct vault_server {
  std::shared_ptr<std::atomic<int>> ran = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::promise<std::shared_ptr<const link_peer>>> peer_seen
    = std::make_shared<std::promise<std::shared_ptr<const link_peer>>>();
  std::shared_ptr<std::atomic<bool>> peer_reported = std::make_shared<std::atomic<bool>>(false);

  service_dispatcher<vault> dispatcher() const {
    service_dispatcher<vault> d;
    d.on<echo>([ran = ran](std::string s, responder<vault, echo> r) {
      ++*ran;
      r.ok(std::move(s));
    });
    d.on<wipe>([ran = ran](std::string s, responder<vault, wipe> r) {
      ++*ran;
      r.ok("wiped " + s);
    });
    return d;
  }

  /// The handler, recording the peer of the first call it sees.
  call_handler handler(service_dispatcher<vault> d) const {
    return [inner = d.handler(), promise = peer_seen, reported = peer_reported](incoming_call in, reply_sink sink) {
      if (!reported->exchange(true))
        promise->set_value(in.peer);
      inner(std::move(in), std::move(sink));
    };
  }
};

/// The reason of an `Err(InvalidPayload(reason))`, or empty.
template <class R>
std::string refusal_of(const caf::expected<R>& r) {
  if (!r || r->is_ok() || r->err().index() != 2)
    return {};
  return std::get<2>(r->err()).message;
}

session_options guarded(call_handler handler, authorizer auth) {
  auto o = serving(std::move(handler));
  o.acceptor = [](connection_id, const connection_settings& peer, const metadata&)
    -> std::variant<accept_connection, reject_connection> {
    accept_connection yes;
    yes.settings = {opposite(peer.parity), 64};
    yes.handler = echo_handler();
    return yes;
  };
  o.authorize = std::move(auth);
  return o;
}

} // namespace

TEST_CASE("a refused first root call gets unauthorized, the handler never runs, and later calls are refused too",
          "[authorize]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  actor_fixture f;
  vault_server srv;
  std::vector<authorize_request::kind> asked;
  auto pair = make_session_pair(f, link_pair(kind), logless(),
                                guarded(srv.handler(srv.dispatcher()), [&](const authorize_request& r) {
                                  asked.push_back(r.what);
                                  return authorization::refuse("no token, no entry");
                                }));
  client<vault> c{caller{pair.client.root}};
  auto first = c.call<echo>(f.self, {"hi"}, wait_bound);
  CHECK(refusal_of(first) == "unauthorized: no token, no entry");
  auto second = c.call<wipe>(f.self, {"all"}, wait_bound);
  CHECK(refusal_of(second) == "unauthorized: no token, no entry");
  CHECK(*srv.ran == 0);
  CHECK(asked == std::vector<authorize_request::kind>{authorize_request::kind::root_call}); // asked once
}

TEST_CASE("a first root call with the bearer token is let in, and so is the rest of the session", "[authorize]") {
  actor_fixture f;
  vault_server srv;
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(),
                                guarded(srv.handler(srv.dispatcher()), require_bearer_token("s3cret")));
  client<vault> c{caller{pair.client.root}};
  auto first = c.call<echo>(f.self, {"hi"}, wait_bound, call_options{{bearer_metadata("s3cret")}});
  REQUIRE(first);
  REQUIRE(first->is_ok());
  CHECK(first->ok() == "hi");
  auto later = c.call<wipe>(f.self, {"x"}, wait_bound); // no token needed any more
  REQUIRE(later);
  CHECK(later->ok() == "wiped x");
  CHECK(*srv.ran == 2);
}

TEST_CASE("a wrong or missing bearer token is refused without echoing the token", "[authorize]") {
  actor_fixture f;
  for (auto token : {std::optional<std::string>{}, std::optional<std::string>{"guess"}}) {
    vault_server srv;
    auto pair = make_session_pair(f, make_memory_link_pair(), logless(),
                                  guarded(srv.handler(srv.dispatcher()), require_bearer_token("s3cret")));
    client<vault> c{caller{pair.client.root}};
    metadata md;
    if (token)
      md.push_back(bearer_metadata(*token));
    auto r = c.call<echo>(f.self, {"hi"}, wait_bound, call_options{std::move(md)});
    auto reason = refusal_of(r);
    CHECK(reason == (token ? "unauthorized: wrong bearer token" : "unauthorized: missing bearer token"));
    CHECK(reason.find("s3cret") == std::string::npos);
    CHECK(*srv.ran == 0);
  }
}

TEST_CASE("a refused open gets a ConnectionReject that names the reason; an open with the token is accepted",
          "[authorize]") {
  actor_fixture f;
  vault_server srv;
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(),
                                guarded(srv.handler(srv.dispatcher()), require_bearer_token("s3cret")));
  auto refused = f.open(pair.client.actor, {parity::odd, 64});
  REQUIRE_FALSE(refused);
  CHECK(is(refused.error(), errc::rejected));
  CHECK_THAT(describe(refused.error()), Catch::Contains("unauthorized: missing bearer token"));
  auto opened = f.open(pair.client.actor, {parity::odd, 64}, {bearer_metadata("s3cret")});
  REQUIRE(opened);
  auto r = f.call(caller{*opened}, 1, payload{7});
  REQUIRE(r);
  CHECK(r->ret == payload{0x00, 7});
}

TEST_CASE("handlers and the session handle see the peer: its address over TCP, its certificate under mutual TLS",
          "[authorize][tls]") {
  actor_fixture f;
  SECTION("tcp") {
    vault_server srv;
    auto pair = make_session_pair(f, tcp_link_pair(), logless(), serving(srv.handler(srv.dispatcher())));
    client<vault> c{caller{pair.client.root}};
    REQUIRE(c.call<echo>(f.self, {"hi"}, wait_bound));
    auto seen = srv.peer_seen->get_future().get();
    REQUIRE(seen);
    CHECK(seen->address.rfind("127.0.0.1:", 0) == 0);
    CHECK_FALSE(seen->tls);
    REQUIRE(pair.server.peer);
    CHECK(pair.server.peer->address == seen->address);
  }
  SECTION("mutual TLS") {
    vault_server srv;
    auto listener = tcp_listener::bind("127.0.0.1", 0, with_tls(server_tls("server", "ca", true)));
    REQUIRE(listener);
    const link_peer* asked_peer = nullptr;
    std::string asked_subject;
    auto opts = guarded(srv.handler(srv.dispatcher()), [&](const authorize_request& r) {
      asked_peer = r.peer;
      asked_subject = r.peer->subject;
      return r.peer->verified && r.peer->subject == "CN=vox-client,O=vox-caf tests"
               ? authorization::allow()
               : authorization::refuse("unknown client");
    });
    auto server = std::async(std::launch::async, [&] {
      auto lnk = (*listener)->accept();
      return lnk ? accept_session(f.sys, *lnk, std::move(opts)) : caf::expected<session_handle>{lnk.error()};
    });
    auto lnk = tcp_connect("127.0.0.1", (*listener)->port(), with_tls(client_tls("ca", "client")));
    REQUIRE(lnk);
    auto client_session = connect_session(f.sys, *lnk, logless());
    REQUIRE(client_session);
    f.track(*client_session);
    auto server_session = server.get();
    REQUIRE(server_session);
    f.track(*server_session);
    client<vault> c{caller{client_session->root}};
    auto r = c.call<echo>(f.self, {"hi"}, wait_bound);
    REQUIRE(r);
    CHECK(r->ok() == "hi");
    CHECK(asked_peer != nullptr);
    CHECK(asked_subject == "CN=vox-client,O=vox-caf tests");
    auto seen = srv.peer_seen->get_future().get();
    REQUIRE(seen);
    CHECK(seen->tls);
    CHECK(seen->verified);
    CHECK(seen->alt_names == std::vector<std::string>{"DNS:client.vox.test"});
    REQUIRE(client_session->peer);
    CHECK(client_session->peer->subject == "CN=vox-server,O=vox-caf tests");
  }
}

TEST_CASE("require<M> checks one method's calls before its handler; require_all checks every method",
          "[authorize][service]") {
  actor_fixture f;
  vault_server srv;
  auto d = srv.dispatcher();
  d.require<wipe>(check_metadata(bearer_token("admin")));
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), serving(d.handler()));
  client<vault> c{caller{pair.client.root}};
  auto open_call = c.call<echo>(f.self, {"free"}, wait_bound);
  REQUIRE(open_call);
  CHECK(open_call->ok() == "free");
  CHECK(refusal_of(c.call<wipe>(f.self, {"x"}, wait_bound)) == "unauthorized: missing bearer token");
  CHECK(refusal_of(c.call<wipe>(f.self, {"x"}, wait_bound, call_options{{bearer_metadata("user")}}))
        == "unauthorized: wrong bearer token");
  auto admin = c.call<wipe>(f.self, {"x"}, wait_bound, call_options{{bearer_metadata("admin")}});
  REQUIRE(admin);
  CHECK(admin->ok() == "wiped x");
  CHECK(*srv.ran == 2);

  vault_server all;
  auto d2 = all.dispatcher();
  d2.require_all(check_metadata(bearer_token("t")));
  auto pair2 = make_session_pair(f, make_memory_link_pair(), logless(), serving(d2.handler()));
  client<vault> c2{caller{pair2.client.root}};
  CHECK(refusal_of(c2.call<echo>(f.self, {"x"}, wait_bound)) == "unauthorized: missing bearer token");
  c2.with_metadata({bearer_metadata("t")}); // every call of this client carries it
  auto ok = c2.call<echo>(f.self, {"y"}, wait_bound);
  REQUIRE(ok);
  CHECK(ok->ok() == "y");
}

TEST_CASE("a bearer token is SENSITIVE and NO_PROPAGATE, and Message text shows it redacted", "[authorize]") {
  auto entry = bearer_metadata("s3cret-token");
  CHECK(entry.key == "authorization");
  CHECK(entry.flags == (metadata_flags::sensitive | metadata_flags::no_propagate));
  auto text = to_string(metadata{entry});
  CHECK(text.find("s3cret-token") == std::string::npos);
  CHECK_THAT(text, Catch::Contains("<redacted>"));
  CHECK(propagated(metadata{entry}).empty());
}
