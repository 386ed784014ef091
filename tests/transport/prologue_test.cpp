// The transport prologue (wire-format.md §2): bytes, both roles, memory and TCP links.
#include <catch2/catch.hpp>

#include <optional>
#include <utility>

#include "support/transport_helpers.hpp"
#include "transport/framing.hpp"
#include "transport/memory_link.hpp"
#include "transport/prologue.hpp"
#include "transport/tcp_link.hpp"

using namespace vox;
using vox::test::peer_thread;
using vox::test::raw_connect;
using vox::test::raw_listener;
using vox::test::read_exactly;
using vox::test::reads_eof;
using vox::test::watchdog;
using vox::test::write_all;

namespace {

using mode_result = caf::expected<conduit_mode>;

std::pair<link_ptr, link_ptr> tcp_pair() {
  auto listener = tcp_listener::bind("127.0.0.1", 0);
  REQUIRE(listener);
  auto client = tcp_connect("127.0.0.1", (*listener)->port());
  REQUIRE(client);
  auto server = (*listener)->accept();
  REQUIRE(server);
  return {*client, *server};
}

/// Runs both roles at once, the acceptor on a thread: {initiator result, acceptor result}.
std::pair<mode_result, mode_result> run_prologue(link_ptr initiator, link_ptr acceptor,
                                                 conduit_mode requested,
                                                 conduit_mode_set supported) {
  watchdog dog_i{initiator};
  watchdog dog_a{acceptor};
  std::optional<mode_result> accepted;
  peer_thread peer{[acceptor] { acceptor->abort(); },
                   [&] { accepted.emplace(accept_transport(*acceptor, supported)); }};
  auto initiated = initiate_transport(*initiator, requested);
  peer.join();
  return {std::move(initiated), std::move(*accepted)};
}

/// Receives one payload that must be there.
byte_buffer recv_one(vox::link& lnk) {
  auto got = lnk.recv();
  REQUIRE(got);
  REQUIRE(*got);
  return std::move(**got);
}

/// The peer's next recv sees end of stream.
bool sees_eof(vox::link& lnk) {
  auto got = lnk.recv();
  return got && !*got;
}

/// The hello an initiator would send, with any version and mode byte.
byte_buffer hello_bytes(uint8_t version, uint8_t mode) {
  auto msg = encode_prologue_message({transport_hello_magic, version, mode});
  return byte_buffer{msg.begin(), msg.end()};
}

byte_buffer framed(byte_span payload) {
  byte_buffer out;
  append_frame_header(out, static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

} // namespace

// r[verify transport.prologue]
TEST_CASE("prologue messages encode to the documented bytes", "[transport]") {
  auto hello = encode_prologue_message({transport_hello_magic, 9, 0});
  auto accept = encode_prologue_message({transport_accept_magic, 9, 0});
  auto reject = encode_prologue_message({transport_reject_magic, 9, 1});
  // wire-format.md §2, including the link length prefix.
  CHECK(to_hex(framed(hello)) == "08000000564f544809000000");
  CHECK(to_hex(framed(accept)) == "08000000564f544109000000");
  CHECK(to_hex(reject) == "564f545209010000");
  CHECK(to_hex(encode_prologue_message({transport_hello_magic, 9, 1})) == "564f544809010000");
  auto parsed = parse_prologue_message(hello);
  REQUIRE(parsed);
  CHECK(parsed->magic == transport_hello_magic);
  CHECK(parsed->version == 9);
  CHECK(parsed->value == 0);
}

TEST_CASE("prologue messages of any other size are refused", "[transport]") {
  for (size_t size : {0u, 4u, 7u, 9u}) {
    byte_buffer bytes(size, 0);
    auto parsed = parse_prologue_message(bytes);
    REQUIRE_FALSE(parsed);
    CHECK(is(parsed.error(), errc::prologue_failed));
    CHECK(describe(parsed.error()).find("transport prologue message size mismatch")
          != std::string::npos);
  }
}

// r[verify transport.prologue.accept]
// r[verify transport.prologue.post-accept]
TEST_CASE("bare mode is accepted on both sides of a memory link", "[transport]") {
  auto [i, a] = make_memory_link_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  auto [initiated, accepted] = run_prologue(i, a, conduit_mode::bare, {conduit_mode::bare});
  REQUIRE(initiated);
  CHECK(*initiated == conduit_mode::bare);
  REQUIRE(accepted);
  CHECK(*accepted == conduit_mode::bare);
  // The link carries ordinary payloads afterwards.
  REQUIRE(i->send(byte_buffer{1}));
  CHECK(recv_one(*a) == byte_buffer{1});
}

TEST_CASE("stable mode is accepted when the acceptor supports it", "[transport]") {
  auto [i, a] = make_memory_link_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  auto [initiated, accepted] = run_prologue(i, a, conduit_mode::stable,
                                            {conduit_mode::bare, conduit_mode::stable});
  REQUIRE(initiated);
  CHECK(*initiated == conduit_mode::stable);
  REQUIRE(accepted);
  CHECK(*accepted == conduit_mode::stable);
}

// r[verify transport.prologue.no-fallback]
// r[verify transport.prologue.reject-close]
TEST_CASE("a bare-only acceptor rejects stable mode and both sides fail", "[transport]") {
  auto [i, a] = make_memory_link_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  auto [initiated, accepted] = run_prologue(i, a, conduit_mode::stable, {conduit_mode::bare});
  REQUIRE_FALSE(initiated);
  CHECK(is(initiated.error(), errc::prologue_rejected));
  CHECK(describe(initiated.error())
        == "prologue_rejected: transport rejected: unsupported conduit mode");
  REQUIRE_FALSE(accepted);
  CHECK(is(accepted.error(), errc::prologue_rejected));
  CHECK(describe(accepted.error()).find("stable") != std::string::npos);
  // Both sides closed the link after the reject.
  CHECK(sees_eof(*i));
  CHECK(sees_eof(*a));
}

TEST_CASE("an unknown conduit mode is answered with exactly a reject", "[transport]") {
  auto [i, a] = make_memory_link_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  REQUIRE(i->send(hello_bytes(9, 7)));
  auto accepted = accept_transport(*a);
  REQUIRE_FALSE(accepted);
  CHECK(is(accepted.error(), errc::prologue_failed));
  CHECK(describe(accepted.error()) == "prologue_failed: unknown conduit mode 7");
  CHECK(to_hex(recv_one(*i)) == "564f545209010000");
  CHECK(sees_eof(*i));
}

TEST_CASE("a wrong prologue version is answered with a reject", "[transport]") {
  auto [i, a] = make_memory_link_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  REQUIRE(i->send(hello_bytes(8, 0)));
  auto accepted = accept_transport(*a);
  REQUIRE_FALSE(accepted);
  CHECK(is(accepted.error(), errc::prologue_failed));
  CHECK(describe(accepted.error()) == "prologue_failed: unsupported transport version 8");
  CHECK(to_hex(recv_one(*i)) == "564f545209010000");
  CHECK(sees_eof(*i));
}

TEST_CASE("a wrong hello magic or size fails the acceptor without a reply", "[transport]") {
  auto wrong_magic = hello_bytes(9, 0);
  wrong_magic[3] = 'X';
  for (const auto& bytes : {wrong_magic, byte_buffer{0x56, 0x4f, 0x54, 0x48, 9, 0, 0}}) {
    auto [i, a] = make_memory_link_pair();
    watchdog dog_i{i};
    watchdog dog_a{a};
    REQUIRE(i->send(bytes));
    auto accepted = accept_transport(*a);
    REQUIRE_FALSE(accepted);
    CHECK(is(accepted.error(), errc::prologue_failed));
    // Nothing queued before our own close: no reply was sent.
    a->close();
    CHECK(sees_eof(*i));
  }
}

TEST_CASE("an acceptor fails when the link ends before the hello", "[transport]") {
  auto [i, a] = make_memory_link_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  i->close();
  auto accepted = accept_transport(*a);
  REQUIRE_FALSE(accepted);
  CHECK(is(accepted.error(), errc::link_closed));
  CHECK(describe(accepted.error()) == "link_closed: link closed during transport prologue");
}

TEST_CASE("the initiator refuses replies that are not a matching accept", "[transport]") {
  struct reply_case {
    const char* name;
    byte_buffer bytes;
    errc code;
    const char* text;
  };
  auto msg = [](uint32_t magic, uint8_t version, uint8_t value) {
    auto m = encode_prologue_message({magic, version, value});
    return byte_buffer{m.begin(), m.end()};
  };
  std::vector<reply_case> cases{
    {"accept of another mode", msg(transport_accept_magic, 9, 1), errc::prologue_failed,
     "transport accepted conduit mode 1 but bare was requested"},
    {"accept of another version", msg(transport_accept_magic, 8, 0), errc::prologue_failed,
     "unsupported transport version 8"},
    {"reject of another version", msg(transport_reject_magic, 8, 1), errc::prologue_failed,
     "unsupported transport version 8"},
    {"a hello", msg(transport_hello_magic, 9, 0), errc::prologue_failed,
     "expected TransportAccept or TransportReject"},
    {"a short reply", byte_buffer{0x56, 0x4f, 0x54, 0x41}, errc::prologue_failed,
     "transport prologue message size mismatch"},
    {"an empty reply", byte_buffer{}, errc::prologue_failed,
     "transport prologue message size mismatch"},
    {"a reject with an unknown reason", msg(transport_reject_magic, 9, 9),
     errc::prologue_rejected, "unknown reason 9"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto [i, a] = make_memory_link_pair();
    watchdog dog_i{i};
    watchdog dog_a{a};
    // Queued before the initiator starts, so no second thread is needed.
    REQUIRE(a->send(c.bytes));
    auto initiated = initiate_transport(*i, conduit_mode::bare);
    REQUIRE_FALSE(initiated);
    CHECK(is(initiated.error(), c.code));
    CHECK(describe(initiated.error()).find(c.text) != std::string::npos);
    CHECK(to_hex(recv_one(*a)) == "564f544809000000");
  }
}

TEST_CASE("an initiator fails when the link ends before the reply", "[transport]") {
  auto [i, a] = make_memory_link_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  a->close();
  auto initiated = initiate_transport(*i, conduit_mode::bare);
  REQUIRE_FALSE(initiated);
  CHECK(is(initiated.error(), errc::link_closed));
  CHECK(describe(initiated.error()) == "link_closed: link closed during transport prologue");
}

TEST_CASE("bare mode is accepted on both sides of a tcp link", "[transport][tcp]") {
  auto [i, a] = tcp_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  auto [initiated, accepted] = run_prologue(i, a, conduit_mode::bare, {conduit_mode::bare});
  REQUIRE(initiated);
  CHECK(*initiated == conduit_mode::bare);
  REQUIRE(accepted);
  CHECK(*accepted == conduit_mode::bare);
}

// r[verify transport.prologue.no-fallback]
TEST_CASE("a bare-only tcp acceptor rejects stable mode and both sides fail",
          "[transport][tcp]") {
  auto [i, a] = tcp_pair();
  watchdog dog_i{i};
  watchdog dog_a{a};
  auto [initiated, accepted] = run_prologue(i, a, conduit_mode::stable, {conduit_mode::bare});
  REQUIRE_FALSE(initiated);
  CHECK(is(initiated.error(), errc::prologue_rejected));
  REQUIRE_FALSE(accepted);
  CHECK(is(accepted.error(), errc::prologue_rejected));
}

// r[verify transport.prologue.first-payload]
// r[verify transport.prologue.request]
TEST_CASE("the initiator's hello and the acceptor's reply have the exact tcp bytes",
          "[transport][tcp]") {
  SECTION("initiator") {
    raw_listener raw;
    REQUIRE(raw.fd);
    auto lnk = tcp_connect("127.0.0.1", raw.port);
    REQUIRE(lnk);
    watchdog dog{*lnk};
    auto conn = raw.accept();
    REQUIRE(conn);
    std::optional<mode_result> initiated;
    peer_thread initiator{[l = *lnk] { l->abort(); },
                          [&] { initiated.emplace(initiate_transport(**lnk, conduit_mode::bare)); }};
    CHECK(to_hex(read_exactly(conn.get(), 12)) == "08000000564f544809000000");
    REQUIRE(write_all(conn.get(), from_hex("08000000564f544109000000")));
    initiator.join();
    REQUIRE(initiated);
    REQUIRE(*initiated);
    CHECK(**initiated == conduit_mode::bare);
  }
  SECTION("acceptor") {
    auto listener = tcp_listener::bind("127.0.0.1", 0);
    REQUIRE(listener);
    auto conn = raw_connect((*listener)->port());
    REQUIRE(conn);
    auto lnk = (*listener)->accept();
    REQUIRE(lnk);
    watchdog dog{*lnk};
    REQUIRE(write_all(conn.get(), from_hex("08000000564f544809000000")));
    auto accepted = accept_transport(**lnk);
    REQUIRE(accepted);
    CHECK(*accepted == conduit_mode::bare);
    CHECK(to_hex(read_exactly(conn.get(), 12)) == "08000000564f544109000000");
  }
}

// r[verify transport.prologue.reject-close]
TEST_CASE("a tcp acceptor answers an unknown mode with exactly a reject, then closes",
          "[transport][tcp]") {
  auto listener = tcp_listener::bind("127.0.0.1", 0);
  REQUIRE(listener);
  auto conn = raw_connect((*listener)->port());
  REQUIRE(conn);
  auto lnk = (*listener)->accept();
  REQUIRE(lnk);
  watchdog dog{*lnk};
  REQUIRE(write_all(conn.get(), from_hex("08000000564f544809070000")));
  auto accepted = accept_transport(**lnk);
  REQUIRE_FALSE(accepted);
  CHECK(describe(accepted.error()) == "prologue_failed: unknown conduit mode 7");
  CHECK(to_hex(read_exactly(conn.get(), 12)) == "08000000564f545209010000");
  CHECK(reads_eof(conn.get()));
}
