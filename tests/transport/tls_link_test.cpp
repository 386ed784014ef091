// TLS links on 127.0.0.1 with certificates made at test time: the handshake, what each end
// learns of the other, and every way a handshake must fail, each with its reason named.
#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "support/tls_certs.hpp"
#include "support/transport_helpers.hpp"
#include "transport/tcp_link.hpp"
#include "transport/unix_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

/// A listener whose one accepted link echoes one frame back (or records why it could not).
struct echo_once {
  std::unique_ptr<tcp_listener> listener;
  std::future<std::string> outcome; ///< "echoed", or the error the server's link saw
  std::promise<link_peer> peer_seen;

  explicit echo_once(link_options options) {
    auto l = tcp_listener::bind("127.0.0.1", 0, options);
    REQUIRE(l);
    listener = std::move(*l);
    outcome = std::async(std::launch::async, [this]() -> std::string {
      auto lnk = listener->accept();
      if (!lnk)
        return describe(lnk.error());
      auto frame = (*lnk)->recv();
      peer_seen.set_value((*lnk)->peer());
      if (!frame)
        return describe(frame.error());
      if (!*frame)
        return "end of stream";
      if (auto sent = (*lnk)->send(**frame); !sent)
        return describe(sent.error());
      (*lnk)->close();
      return "echoed";
    });
  }

  // The thread uses the promise and the listener: it must end before they go. A listener
  // shut down wakes an accept that no client came for.
  ~echo_once() {
    listener->shutdown();
    if (outcome.valid())
      outcome.wait();
  }

  uint16_t port() const { return listener->port(); }

  std::string result() {
    REQUIRE(outcome.wait_for(std::chrono::seconds{20}) == std::future_status::ready);
    return outcome.get();
  }
};

std::string connect_error(std::shared_ptr<const tls_context> client, std::shared_ptr<const tls_context> server) {
  echo_once srv{with_tls(std::move(server))};
  auto lnk = tcp_connect("127.0.0.1", srv.port(), with_tls(std::move(client)));
  REQUIRE_FALSE(lnk);
  CHECK(is(lnk.error(), errc::tls_failed));
  srv.result();
  return describe(lnk.error());
}

/// Connects (the handshake succeeds, as TLS 1.3 clients finish before the server judges
/// their certificate) and returns why the first read failed.
std::string first_read_error(std::shared_ptr<const tls_context> client, std::shared_ptr<const tls_context> server,
                             std::string* server_error = nullptr) {
  echo_once srv{with_tls(std::move(server))};
  auto lnk = tcp_connect("127.0.0.1", srv.port(), with_tls(std::move(client)));
  REQUIRE(lnk);
  (*lnk)->send(byte_buffer{1, 2, 3}); // may fail already: the server's verdict decides
  auto got = (*lnk)->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::tls_failed));
  auto server_saw = srv.result();
  if (server_error)
    *server_error = server_saw;
  return describe(got.error());
}

} // namespace

TEST_CASE("a TLS link carries frames both ways and tells each end who the other is", "[tls][transport]") {
  echo_once srv{with_tls(server_tls("server", "ca", true))};
  auto lnk = tcp_connect("127.0.0.1", srv.port(), with_tls(client_tls("ca", "client")));
  REQUIRE(lnk);
  CHECK((*lnk)->describe().rfind("tls/tcp ", 0) == 0);
  byte_buffer big(100000, 0x5a); // several TLS records
  REQUIRE((*lnk)->send(big));
  auto back = (*lnk)->recv();
  REQUIRE(back);
  REQUIRE(*back);
  CHECK(**back == big);
  auto eof = (*lnk)->recv();
  REQUIRE(eof);
  CHECK_FALSE(*eof); // close_notify, then FIN: a clean end
  CHECK(srv.result() == "echoed");

  auto server = (*lnk)->peer();
  CHECK(server.tls);
  CHECK(server.verified);
  CHECK(server.address.rfind("127.0.0.1:", 0) == 0);
  CHECK(server.subject == "CN=vox-server,O=vox-caf tests");
  CHECK(std::find(server.alt_names.begin(), server.alt_names.end(), "IP:127.0.0.1") != server.alt_names.end());
  CHECK(std::find(server.alt_names.begin(), server.alt_names.end(), "DNS:localhost") != server.alt_names.end());
  auto client = srv.peer_seen.get_future().get();
  CHECK(client.tls);
  CHECK(client.verified);
  CHECK(client.subject == "CN=vox-client,O=vox-caf tests");
  CHECK(client.alt_names == std::vector<std::string>{"DNS:client.vox.test"});
}

TEST_CASE("a client checks the server's host name, and a server name it is told to expect", "[tls][transport]") {
  SECTION("dialling localhost checks the DNS name") {
    echo_once srv{with_tls(server_tls())};
    auto lnk = tcp_connect("localhost", srv.port(), with_tls(client_tls()));
    if (!lnk && is(lnk.error(), errc::io_error)) {
      WARN("skipped: localhost does not reach 127.0.0.1 here: " << describe(lnk.error()));
      return;
    }
    REQUIRE(lnk);
    (*lnk)->close();
  }
  SECTION("server_name overrides the address dialled") {
    tls_config cfg;
    cfg.ca_file = pem("ca");
    cfg.server_name = "other.example";
    auto ctx = tls_context::client(cfg);
    REQUIRE(ctx);
    auto err = connect_error(*ctx, server_tls());
    CHECK_THAT(err, Catch::Contains("hostname mismatch"));
  }
}

TEST_CASE("a client refuses a self-signed, expired, misnamed or unknown-CA server, naming why", "[tls][transport]") {
  CHECK_THAT(connect_error(client_tls(), server_tls("selfsigned")), Catch::Contains("self-signed certificate"));
  CHECK_THAT(connect_error(client_tls(), server_tls("expired")), Catch::Contains("certificate has expired"));
  CHECK_THAT(connect_error(client_tls(), server_tls("wronghost")), Catch::Contains("IP address mismatch"));
  CHECK_THAT(connect_error(client_tls(), server_tls("other-server")),
             Catch::Contains("unable to get local issuer certificate"));
  CHECK_THAT(connect_error(client_tls(), server_tls("other-server")),
             Catch::Contains("the server's certificate did not verify"));
}

TEST_CASE("a client told to skip verification connects to a self-signed server, and learns it is unverified",
          "[tls][transport]") {
  tls_config cfg;
  cfg.insecure_skip_verify = true;
  auto ctx = tls_context::client(cfg);
  REQUIRE(ctx);
  echo_once srv{with_tls(server_tls("selfsigned"))};
  auto lnk = tcp_connect("127.0.0.1", srv.port(), with_tls(*ctx));
  REQUIRE(lnk);
  auto p = (*lnk)->peer();
  CHECK(p.tls);
  CHECK_FALSE(p.verified);
  CHECK(p.subject.empty());
  (*lnk)->close();
}

TEST_CASE("mutual TLS refuses a client without a certificate or with one from another CA", "[tls][transport]") {
  std::string server_saw;
  CHECK_THAT(first_read_error(client_tls(), server_tls("server", "ca", true), &server_saw),
             Catch::Contains("certificate required"));
  CHECK_THAT(server_saw, Catch::Contains("peer did not return a certificate"));
  CHECK_THAT(first_read_error(client_tls("ca", "other-client"), server_tls("server", "ca", true), &server_saw),
             Catch::Contains("unknown ca"));
  CHECK_THAT(server_saw, Catch::Contains("the client's certificate did not verify"));
}

TEST_CASE("a plain client on a TLS port and a TLS client on a plain port fail at once, saying so",
          "[tls][transport]") {
  SECTION("TLS client, plain server") {
    echo_once srv{link_options{}};
    auto lnk = tcp_connect("127.0.0.1", srv.port(), with_tls(client_tls()));
    REQUIRE_FALSE(lnk);
    CHECK(is(lnk.error(), errc::tls_failed));
    CHECK_THAT(describe(lnk.error()), Catch::Contains("does it speak TLS?"));
    CHECK_THAT(srv.result(), Catch::Contains("the peer speaks TLS on a plain link"));
  }
  SECTION("plain client, TLS server") {
    echo_once srv{with_tls(server_tls())};
    auto lnk = tcp_connect("127.0.0.1", srv.port());
    REQUIRE(lnk);
    REQUIRE((*lnk)->send(byte_buffer{'V', 'O', 'T', 'H', 9, 0, 0, 0}));
    auto got = (*lnk)->recv();
    REQUIRE_FALSE(got);
    CHECK(is(got.error(), errc::tls_failed));
    CHECK_THAT(describe(got.error()), Catch::Contains("the peer speaks TLS on a plain link"));
    CHECK_THAT(srv.result(), Catch::Contains("does not speak TLS"));
  }
}

TEST_CASE("a server that also allows TLS 1.2 still serves a default client",
          "[tls][transport]") {
  tls_config cfg;
  cfg.cert_file = pem("server");
  cfg.key_file = key_of("server");
  cfg.allow_tls12 = true; // 1.2 or 1.3: a default client negotiates 1.3
  auto srv_ctx = tls_context::server(cfg);
  REQUIRE(srv_ctx);
  echo_once srv{with_tls(*srv_ctx)};
  auto lnk = tcp_connect("127.0.0.1", srv.port(), with_tls(client_tls()));
  REQUIRE(lnk);
  REQUIRE((*lnk)->send(byte_buffer{7}));
  auto back = (*lnk)->recv();
  REQUIRE(back);
  REQUIRE(*back);
  CHECK(srv.result() == "echoed");
}

TEST_CASE("a TLS context refuses missing files and a key that does not match, naming the file", "[tls][transport]") {
  tls_config cfg;
  auto no_cert = tls_context::server(cfg);
  REQUIRE_FALSE(no_cert);
  CHECK_THAT(describe(no_cert.error()), Catch::Contains("needs a certificate and a key"));
  cfg.cert_file = pem("server");
  cfg.key_file = key_of("client");
  auto mismatch = tls_context::server(cfg);
  REQUIRE_FALSE(mismatch);
  CHECK_THAT(describe(mismatch.error()), Catch::Contains("mismatch"));
  cfg.key_file = cert_dir() + "/absent.key";
  auto absent = tls_context::server(cfg);
  REQUIRE_FALSE(absent);
  CHECK_THAT(describe(absent.error()), Catch::Contains("absent.key"));
  tls_config mtls;
  mtls.cert_file = pem("server");
  mtls.key_file = key_of("server");
  mtls.require_client_cert = true;
  auto no_ca = tls_context::server(mtls);
  REQUIRE_FALSE(no_ca);
  CHECK_THAT(describe(no_ca.error()), Catch::Contains("needs a CA file"));
}

TEST_CASE("TLS runs over a Unix socket too, checking the server's name as localhost", "[tls][transport]") {
  auto path = cert_dir() + "/vox.sock";
  auto listener = unix_listener::bind(path, with_tls(server_tls()));
  REQUIRE(listener);
  auto served = std::async(std::launch::async, [&]() -> std::string {
    auto lnk = (*listener)->accept();
    if (!lnk)
      return describe(lnk.error());
    auto frame = (*lnk)->recv();
    if (!frame || !*frame)
      return "no frame";
    if (auto sent = (*lnk)->send(**frame); !sent)
      return describe(sent.error());
    return "echoed";
  });
  auto lnk = unix_connect(path, with_tls(client_tls()));
  REQUIRE(lnk);
  CHECK((*lnk)->describe().rfind("tls/unix ", 0) == 0);
  REQUIRE((*lnk)->send(byte_buffer{4, 5, 6}));
  auto back = (*lnk)->recv();
  REQUIRE(back);
  REQUIRE(*back);
  CHECK(**back == byte_buffer{4, 5, 6});
  CHECK((*lnk)->peer().verified);
  REQUIRE(served.wait_for(std::chrono::seconds{20}) == std::future_status::ready);
  CHECK(served.get() == "echoed");
}
