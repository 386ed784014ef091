// The session handshake over memory and TCP links (wire-format.md §5.3).
#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <utility>

#include "protocol/error.hpp"
#include "protocol/handshake.hpp"
#include "support/transport_helpers.hpp"
#include "support/vectors.hpp"
#include "transport/handshake_exchange.hpp"
#include "transport/memory_link.hpp"
#include "transport/prologue.hpp"
#include "transport/tcp_link.hpp"

using namespace vox;
using vox::test::peer_thread;
using vox::test::watchdog;

namespace {

using result_t = caf::expected<handshake_result>;

/// Runs both roles at once, the acceptor on a thread: {initiator result, acceptor result}.
std::pair<result_t, result_t> run_handshake(link_ptr initiator, link_ptr acceptor,
                                            const handshake_options& initiator_opts = {},
                                            const handshake_options& acceptor_opts = {}) {
  watchdog dog_i{initiator};
  watchdog dog_a{acceptor};
  std::optional<result_t> accepted;
  peer_thread peer{[acceptor] { acceptor->abort(); },
                   [&] { accepted.emplace(handshake_as_acceptor(*acceptor, acceptor_opts)); }};
  auto initiated = handshake_as_initiator(*initiator, initiator_opts);
  peer.join();
  return {std::move(initiated), std::move(*accepted)};
}

/// Receives one payload that must be there and decodes it as a handshake message.
handshake_message recv_message(vox::link& lnk) {
  auto got = lnk.recv();
  REQUIRE(got);
  REQUIRE(*got);
  auto msg = decode_handshake(**got);
  REQUIRE(msg);
  return std::move(*msg);
}

void send_message(vox::link& lnk, const handshake_message& msg) {
  REQUIRE(lnk.send(encode_handshake(msg)));
}

/// True if the next recv on `lnk` sees end of stream (nothing else was sent).
bool sees_eof(vox::link& lnk) {
  auto got = lnk.recv();
  return got && !*got;
}

bool says(const caf::error& err, const std::string& text) {
  return describe(err).find(text) != std::string::npos;
}

hello_yourself reply_with_key(byte_buffer key) {
  hello_yourself hy;
  hy.settings = connection_settings{parity::even, 8};
  hy.resume_key = std::move(key);
  return hy;
}

/// Connects a TCP pair on 127.0.0.1 and runs the bare prologue: {initiator, acceptor}.
std::pair<link_ptr, link_ptr> tcp_pair_after_prologue() {
  auto listener = tcp_listener::bind("127.0.0.1", 0);
  REQUIRE(listener);
  auto client = tcp_connect("127.0.0.1", (*listener)->port());
  REQUIRE(client);
  auto server = (*listener)->accept();
  REQUIRE(server);
  watchdog dog_c{*client};
  watchdog dog_s{*server};
  std::optional<caf::expected<conduit_mode>> accepted;
  peer_thread peer{[s = *server] { s->abort(); },
                   [&] { accepted.emplace(accept_transport(**server)); }};
  auto initiated = initiate_transport(**client, conduit_mode::bare);
  peer.join();
  REQUIRE(initiated);
  REQUIRE(*accepted);
  return {*client, *server};
}

} // namespace

// r[verify session.handshake]
TEST_CASE("Hello, HelloYourself and LetsGo complete a handshake over a memory link",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  handshake_options init;
  init.settings.max_concurrent_requests = 10;
  init.supports_retry = true;
  handshake_options acc;
  acc.settings = connection_settings{parity::odd, 20}; // parity is ignored by the acceptor
  auto [i, r] = run_handshake(a, b, init, acc);
  REQUIRE(i);
  REQUIRE(r);
  CHECK(i->role == session_role::initiator);
  CHECK(r->role == session_role::acceptor);
  CHECK(i->our_settings == connection_settings{parity::odd, 10});
  CHECK(r->our_settings == connection_settings{parity::even, 20});
  CHECK(i->peer_settings == r->our_settings);
  CHECK(r->peer_settings == i->our_settings);
  CHECK(r->peer_supports_retry);
  CHECK_FALSE(i->peer_supports_retry);
  // By default both sides send the generated Message schema list.
  CHECK(i->peer_message_payload_schema == message_schema_cbor());
  CHECK(r->peer_message_payload_schema == message_schema_cbor());
}

// r[verify session.handshake.resume]
TEST_CASE("the acceptor's fresh 16-byte key becomes the session key on both sides",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  auto [i, r] = run_handshake(a, b);
  REQUIRE(i);
  REQUIRE(r);
  REQUIRE(r->session_resume_key);
  REQUIRE(i->session_resume_key);
  CHECK(*i->session_resume_key == *r->session_resume_key);
  REQUIRE(i->peer_resume_key);
  CHECK(i->peer_resume_key->size() == 16);
  CHECK_FALSE(r->peer_resume_key);

  auto [c, d] = make_memory_link_pair();
  auto [i2, r2] = run_handshake(c, d);
  REQUIRE(r2);
  REQUIRE(r2->session_resume_key);
  CHECK(*r2->session_resume_key != *r->session_resume_key);
}

TEST_CASE("a non-resumable acceptor sends no key", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  handshake_options acc;
  acc.resumable = false;
  auto [i, r] = run_handshake(a, b, {}, acc);
  REQUIRE(i);
  REQUIRE(r);
  CHECK_FALSE(i->session_resume_key);
  CHECK_FALSE(r->session_resume_key);
  CHECK_FALSE(i->peer_resume_key);
  CHECK_FALSE(r->peer_resume_key);
}

// r[verify session.handshake.resume]
TEST_CASE("a Hello presenting a resume key gets Sorry unless the acceptor knows the key", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  handshake_options init;
  init.resume_key = byte_buffer(16, 0xab);
  handshake_options acc;
  bool known = GENERATE(false, true);
  INFO("known: " << known);
  byte_buffer asked;
  acc.known_resume_key = [&](byte_span key) {
    asked.assign(key.begin(), key.end());
    return known;
  };
  auto [i, r] = run_handshake(a, b, init, acc);
  CHECK(asked == byte_buffer(16, 0xab));
  if (!known) {
    REQUIRE_FALSE(i);
    CHECK(describe(i.error()).find("unknown session resume key") != std::string::npos);
    REQUIRE_FALSE(r);
    CHECK(is(r.error(), errc::resume_refused));
    return;
  }
  REQUIRE(i);
  REQUIRE(r);
  REQUIRE(r->peer_resume_key);
  CHECK(*r->peer_resume_key == byte_buffer(16, 0xab));
  // A fresh key for the resumed session (behaviour 41).
  REQUIRE(i->session_resume_key);
  CHECK(byte_buffer(i->session_resume_key->begin(), i->session_resume_key->end()) != byte_buffer(16, 0xab));
}

TEST_CASE("the acceptor answers an Even initiator with Odd and sends our schema verbatim",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog{a};
  auto blob = vox::test::read_vector("message-payload-schema.cbor");
  REQUIRE(blob.size() == 6569);
  handshake_options acc;
  acc.message_payload_schema = blob;
  std::optional<result_t> accepted;
  peer_thread peer{[b = b] { b->abort(); },
                   [&, b = b] { accepted.emplace(handshake_as_acceptor(*b, acc)); }};
  hello h;
  h.parity = parity::even;
  h.settings = connection_settings{parity::even, 5};
  send_message(*a, h);
  auto reply = recv_message(*a);
  REQUIRE(std::holds_alternative<hello_yourself>(reply));
  const auto& hy = std::get<hello_yourself>(reply);
  CHECK(hy.settings.parity == parity::odd);
  CHECK(hy.message_payload_schema == blob);
  REQUIRE(hy.resume_key);
  CHECK(hy.resume_key->size() == 16);
  send_message(*a, lets_go{});
  peer.join();
  REQUIRE(*accepted);
  CHECK((*accepted)->our_settings.parity == parity::odd);
}

// r[verify session.handshake.sorry]
TEST_CASE("an initiator whose Hello is answered with Sorry fails with the reason",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog{a};
  peer_thread peer{[b = b] { b->abort(); }, [b = b] {
                     auto got = b->recv(); // the Hello
                     if (got && *got)
                       b->send(encode_handshake(sorry{"session resume key mismatch"}));
                   }};
  auto result = handshake_as_initiator(*a, {});
  peer.join();
  REQUIRE_FALSE(result);
  CHECK(is(result.error(), errc::handshake_failed));
  CHECK(says(result.error(), "peer sent Sorry: session resume key mismatch"));
}

// r[verify session.handshake.sorry]
TEST_CASE("an acceptor answered with Sorry instead of LetsGo fails with the reason",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog{a};
  std::optional<result_t> accepted;
  peer_thread peer{[b = b] { b->abort(); },
                   [&, b = b] { accepted.emplace(handshake_as_acceptor(*b, {})); }};
  send_message(*a, hello{});
  CHECK(std::holds_alternative<hello_yourself>(recv_message(*a)));
  send_message(*a, sorry{"schemas disagree"});
  peer.join();
  REQUIRE_FALSE(*accepted);
  CHECK(is(accepted->error(), errc::handshake_failed));
  CHECK(says(accepted->error(), "peer sent Sorry: schemas disagree"));
}

TEST_CASE("an acceptor that does not get Hello fails without sending anything",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog_a{a};
  watchdog dog_b{b};
  SECTION("a LetsGo first") {
    send_message(*a, lets_go{});
    auto result = handshake_as_acceptor(*b, {});
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::handshake_failed));
    CHECK(says(result.error(), "expected Hello, got LetsGo"));
  }
  SECTION("garbage CBOR") {
    REQUIRE(a->send(from_hex("ffffffff")));
    auto result = handshake_as_acceptor(*b, {});
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::handshake_failed));
    CHECK(says(result.error(), "undecodable"));
  }
  SECTION("a truncated Hello") {
    auto bytes = encode_handshake(hello{});
    bytes.pop_back();
    REQUIRE(a->send(bytes));
    auto result = handshake_as_acceptor(*b, {});
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::handshake_failed));
  }
  b->close();
  CHECK(sees_eof(*a));
}

TEST_CASE("an initiator refuses a reply that is not HelloYourself", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog_a{a};
  watchdog dog_b{b};
  SECTION("a Hello back") {
    send_message(*b, hello{}); // queued before the initiator starts: no thread needed
    auto result = handshake_as_initiator(*a, {});
    REQUIRE_FALSE(result);
    CHECK(says(result.error(), "expected HelloYourself or Sorry, got Hello"));
  }
  SECTION("garbage CBOR") {
    REQUIRE(b->send(from_hex("a16548656c6c6f")));
    auto result = handshake_as_initiator(*a, {});
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::handshake_failed));
  }
  // The initiator sent its Hello and nothing after it: no LetsGo on failure.
  CHECK(std::holds_alternative<hello>(recv_message(*b)));
  a->close();
  CHECK(sees_eof(*b));
}

TEST_CASE("the initiator keeps a peer key of the wrong length only as peer_resume_key",
          "[transport]") {
  auto [a, b] = make_memory_link_pair();
  watchdog dog{a};
  send_message(*b, reply_with_key(byte_buffer(15, 1)));
  auto result = handshake_as_initiator(*a, {});
  REQUIRE(result);
  CHECK_FALSE(result->session_resume_key);
  REQUIRE(result->peer_resume_key);
  CHECK(result->peer_resume_key->size() == 15);
  CHECK(result->peer_settings == connection_settings{parity::even, 8});
  CHECK(std::holds_alternative<hello>(recv_message(*b)));
  CHECK(std::holds_alternative<lets_go>(recv_message(*b)));
}

TEST_CASE("end of stream during the handshake is reported as link_closed", "[transport]") {
  auto [a, b] = make_memory_link_pair();
  SECTION("the acceptor closes instead of answering Hello") {
    b->close();
    auto result = handshake_as_initiator(*a, {});
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::link_closed));
    CHECK(says(result.error(), "peer closed during handshake"));
  }
  SECTION("the initiator closes instead of sending LetsGo") {
    watchdog dog{a};
    std::optional<result_t> accepted;
    peer_thread peer{[b = b] { b->abort(); },
                     [&, b = b] { accepted.emplace(handshake_as_acceptor(*b, {})); }};
    send_message(*a, hello{});
    CHECK(std::holds_alternative<hello_yourself>(recv_message(*a)));
    a->close();
    peer.join();
    REQUIRE_FALSE(*accepted);
    CHECK(is(accepted->error(), errc::link_closed));
  }
  SECTION("the initiator closes before sending anything") {
    a->close();
    auto result = handshake_as_acceptor(*b, {});
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::link_closed));
  }
}

// r[verify session.handshake]
TEST_CASE("a handshake completes over tcp after the prologue", "[transport][tcp]") {
  auto [client, server] = tcp_pair_after_prologue();
  auto blob = vox::test::read_vector("message-payload-schema.cbor");
  REQUIRE(blob.size() == 6569);
  handshake_options init;
  init.message_payload_schema = blob;
  handshake_options acc;
  acc.message_payload_schema = blob;
  acc.settings.max_concurrent_requests = 128;
  auto [i, r] = run_handshake(client, server, init, acc);
  REQUIRE(i);
  REQUIRE(r);
  CHECK(i->our_settings.parity == parity::odd);
  CHECK(r->our_settings == connection_settings{parity::even, 128});
  CHECK(i->peer_settings == r->our_settings);
  CHECK(r->peer_settings == i->our_settings);
  CHECK(i->peer_message_payload_schema == blob);
  CHECK(r->peer_message_payload_schema == blob);
  REQUIRE(i->session_resume_key);
  CHECK(i->session_resume_key == r->session_resume_key);
}

TEST_CASE("a tcp initiator answered with Sorry or garbage fails cleanly", "[transport][tcp]") {
  auto [client, server] = tcp_pair_after_prologue();
  watchdog dog{client};
  const bool send_sorry = GENERATE(true, false);
  peer_thread peer{[s = server] { s->abort(); }, [s = server, send_sorry] {
                     auto got = s->recv();
                     if (!got || !*got)
                       return;
                     if (send_sorry)
                       s->send(encode_handshake(sorry{"no"}));
                     else
                       s->send(from_hex("a1a1a1a1"));
                   }};
  auto result = handshake_as_initiator(*client, {});
  peer.join();
  REQUIRE_FALSE(result);
  CHECK(is(result.error(), errc::handshake_failed));
  if (send_sorry)
    CHECK(says(result.error(), "peer sent Sorry: no"));
}

TEST_CASE("a tcp peer that disconnects mid-handshake gives link_closed", "[transport][tcp]") {
  auto [client, server] = tcp_pair_after_prologue();
  watchdog dog{client};
  peer_thread peer{[s = server] { s->abort(); }, [s = server] {
                     auto got = s->recv(); // the Hello, then hang up
                     (void)got;
                     s->close();
                   }};
  auto result = handshake_as_initiator(*client, {});
  peer.join();
  REQUIRE_FALSE(result);
  CHECK(is(result.error(), errc::link_closed));
}

// r[verify session.handshake.protocol-schema]
TEST_CASE("the Hello we send by default carries the generated Message schema blob", "[transport]") {
  auto [initiator, acceptor] = vox::make_memory_link_pair();
  std::thread peer{[lnk = initiator] { (void) vox::handshake_as_initiator(*lnk, vox::handshake_options{}); }};
  auto frame = acceptor->recv();
  acceptor->abort();
  peer.join();
  REQUIRE(frame);
  REQUIRE(*frame);
  auto blob = vox::test::read_vector("message-payload-schema.cbor");
  REQUIRE(blob.size() == 6569);
  auto hit = std::search((*frame)->begin(), (*frame)->end(), blob.begin(), blob.end());
  CHECK(hit != (*frame)->end());
  auto hs = vox::decode_handshake(**frame);
  REQUIRE(hs);
  REQUIRE(std::holds_alternative<vox::hello>(*hs));
  CHECK(std::get<vox::hello>(*hs).message_payload_schema == blob);
}
