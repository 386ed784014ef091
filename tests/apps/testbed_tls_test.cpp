// vox-testbed's server over TLS on 127.0.0.1, with certificates made at test time: every
// client scenario, plain and TLS peers on the wrong ports, and hostile traffic before and
// after the TLS handshake. The server keeps serving everyone else throughout.
#include <catch2/catch.hpp>

#include <openssl/ssl.h>
#include <poll.h>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"
#include "support/session_fixture.hpp"
#include "support/testbed_scenarios.hpp"
#include "support/tls_certs.hpp"
#include "support/transport_helpers.hpp"
#include "transport/prologue.hpp"

using namespace vox;
using namespace vox::test;
using namespace vox::testbed;

namespace {

std::unique_ptr<session_server> start_tls_testbed(actor_fixture& f, std::shared_ptr<const tls_context> tls,
                                                  std::chrono::milliseconds handshake_timeout = std::chrono::seconds{10}) {
  auto cfg = testbed_server();
  cfg.links.tls = std::move(tls);
  cfg.options.handshake_timeout = handshake_timeout;
  auto srv = session_server::start(f.sys, cfg);
  if (!srv)
    throw std::runtime_error(describe(srv.error()));
  return std::move(*srv);
}

/// A TLS client still gets answers.
void still_serves(actor_fixture& f, uint16_t port) {
  auto lnk = tcp_connect("127.0.0.1", port, with_tls(client_tls()));
  REQUIRE(lnk);
  auto s = connect_session(f.sys, *lnk, logless());
  REQUIRE(s);
  f.track(*s);
  vox::client<service_type> tb{caller{s->root}};
  auto r = tb.call<m::echo>(f.self, {"still here"}, wait_bound);
  REQUIRE(r);
  CHECK(r->ok() == "still here");
}

/// Waits (bounded) until the server closes `fd`: true on end of stream or a reset.
bool closed_by_server(int fd) {
  uint8_t buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 1000) <= 0)
      continue;
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      return true; // anything the server said before closing (an alert) is skipped
  }
  return false;
}

} // namespace

TEST_CASE("every client scenario passes against our Testbed server over mutual TLS", "[testbed][tls]") {
  actor_fixture f;
  auto srv = start_tls_testbed(f, server_tls("server", "ca", true));
  auto lnk = tcp_connect("127.0.0.1", srv->port(), with_tls(client_tls("ca", "client")));
  REQUIRE(lnk);
  auto session = connect_session(f.sys, *lnk, logless());
  REQUIRE(session);
  f.track(*session);
  vox::client<service_type> root{caller{session->root}};
  scenario_context ctx{f.sys, f.self, root};
  check_scenarios(ctx);
  auto conn = f.open(session->actor, {parity::odd, 64});
  REQUIRE(conn);
  vox::client<service_type> virt{caller{*conn}};
  scenario_context vctx{f.sys, f.self, virt};
  check_scenarios(vctx, false, "virtual ");
}

TEST_CASE("a plain client against a TLS server, and a TLS client against a plain one, fail fast and say why",
          "[testbed][tls]") {
  actor_fixture f;
  SECTION("plain client, TLS server") {
    auto srv = start_tls_testbed(f, server_tls());
    auto lnk = tcp_connect("127.0.0.1", srv->port());
    REQUIRE(lnk);
    auto s = connect_session(f.sys, *lnk, logless());
    REQUIRE_FALSE(s);
    CHECK_THAT(describe(s.error()), Catch::Contains("the peer speaks TLS on a plain link"));
    still_serves(f, srv->port());
  }
  SECTION("TLS client, plain server") {
    auto srv = session_server::start(f.sys, testbed_server());
    REQUIRE(srv);
    auto lnk = tcp_connect("127.0.0.1", (*srv)->port(), with_tls(client_tls()));
    REQUIRE_FALSE(lnk);
    CHECK(is(lnk.error(), errc::tls_failed));
    CHECK_THAT(describe(lnk.error()), Catch::Contains("does it speak TLS?"));
  }
}

TEST_CASE("garbage before the TLS handshake closes that socket and the server serves others", "[testbed][tls][hostile]") {
  actor_fixture f;
  auto srv = start_tls_testbed(f, server_tls());
  for (auto garbage : {byte_buffer{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, byte_buffer{'G', 'E', 'T', ' ', '/', '\r', '\n'},
                       // a handshake record that claims 64 KiB, more than any TLS record may hold
                       byte_buffer{0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00}}) {
    auto raw = raw_connect(srv->port());
    REQUIRE(raw);
    REQUIRE(write_all(raw.get(), garbage));
    CHECK(closed_by_server(raw.get()));
  }
  still_serves(f, srv->port());
}

TEST_CASE("garbage frames after the TLS handshake get a ProtocolError and the server serves others",
          "[testbed][tls][hostile]") {
  actor_fixture f;
  auto srv = start_tls_testbed(f, server_tls());
  auto lnk = tcp_connect("127.0.0.1", srv->port(), with_tls(client_tls()));
  REQUIRE(lnk);
  REQUIRE(initiate_transport(**lnk, conduit_mode::bare));
  REQUIRE(handshake_as_initiator(**lnk, handshake_options{}));
  REQUIRE((*lnk)->send(byte_buffer{0xff, 0xff}));
  bool protocol_error_seen = false;
  for (;;) {
    auto frame = (*lnk)->recv();
    if (!frame || !*frame)
      break;
    auto m = decode_message(**frame);
    if (m && std::holds_alternative<protocol_error>(m->payload))
      protocol_error_seen = true;
  }
  CHECK(protocol_error_seen);
  still_serves(f, srv->port());
}

TEST_CASE("a client that stalls mid-handshake is cut at the handshake deadline and costs no one else",
          "[testbed][tls][hostile]") {
  actor_fixture f;
  auto srv = start_tls_testbed(f, server_tls(), std::chrono::milliseconds{300});
  auto stalled = raw_connect(srv->port());
  REQUIRE(stalled);
  // The start of a ClientHello: a record header promising 512 bytes, then 3 of them.
  REQUIRE(write_all(stalled.get(), byte_buffer{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01}));
  auto silent = raw_connect(srv->port()); // connects and never says anything
  REQUIRE(silent);
  still_serves(f, srv->port());
  CHECK(closed_by_server(stalled.get()));
  CHECK(closed_by_server(silent.get()));
}

TEST_CASE("a TLS 1.2 client asking to renegotiate is refused and the server serves others", "[testbed][tls][hostile]") {
  actor_fixture f;
  tls_config cfg;
  cfg.cert_file = pem("server");
  cfg.key_file = key_of("server");
  cfg.allow_tls12 = true;
  auto ctx = tls_context::server(cfg);
  REQUIRE(ctx);
  auto srv = start_tls_testbed(f, *ctx);
  auto raw = raw_connect(srv->port());
  REQUIRE(raw);
  timeval bound{10, 0}; // a server that ignored the request must not hang the test
  ::setsockopt(raw.get(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
  // OpenSSL directly: vox-caf's own client never renegotiates.
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> cctx{SSL_CTX_new(TLS_client_method()), SSL_CTX_free};
  SSL_CTX_set_max_proto_version(cctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl{SSL_new(cctx.get()), SSL_free};
  SSL_set_fd(ssl.get(), raw.get());
  REQUIRE(SSL_connect(ssl.get()) == 1);
  CHECK(SSL_version(ssl.get()) == TLS1_2_VERSION);
  REQUIRE(SSL_renegotiate(ssl.get()) == 1);
  SSL_do_handshake(ssl.get()); // sends the new ClientHello
  // The server answers no_renegotiation (or closes); it never completes a second handshake.
  uint8_t buf[64];
  int n = SSL_read(ssl.get(), buf, sizeof(buf));
  CHECK(n <= 0);
  CHECK(SSL_renegotiate_pending(ssl.get()) == 1);
  still_serves(f, srv->port());
}
