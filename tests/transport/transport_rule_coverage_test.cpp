// Transport rules that had an implementation but no test of their own: the bare conduit
// (wire-format.md §3) and the requested mode of the transport prologue (§2).
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "protocol/message.hpp"
#include "support/session_fixture.hpp"
#include "support/transport_helpers.hpp"
#include "support/vectors.hpp"
#include "transport/bare_conduit.hpp"
#include "transport/memory_link.hpp"
#include "transport/prologue.hpp"

using namespace vox;
using vox::test::peer_thread;
using vox::test::watchdog;

namespace {

/// The payload `lnk` receives next; empty if it received none (the test then fails).
byte_buffer next_payload(vox::link& lnk) {
  auto got = lnk.recv();
  if (!got || !*got)
    return {};
  return std::move(**got);
}

} // namespace

// r[verify conduit.bare]
TEST_CASE("a bare conduit carries each Message as exactly its postcard bytes, one link payload each",
          "[transport][conduit]") {
  auto kind = VOX_EACH_LINK_KIND();
  INFO("link: " << kind);
  auto [ours, theirs] = vox::test::link_pair(kind);
  watchdog dog_ours{ours};
  watchdog dog_theirs{theirs};
  bare_conduit conduit{ours};
  auto stems = vox::test::vector_stems("wire");
  REQUIRE(stems.size() == 12);
  std::vector<byte_buffer> golden;
  for (const auto& stem : stems) {
    golden.push_back(vox::test::read_vector("wire/" + stem + ".bin"));
    REQUIRE_FALSE(golden.back().empty());
  }

  // Sending: the peer receives one payload per Message, holding the reference's bytes and
  // nothing before or after them (no header, length, checksum or padding of its own).
  for (size_t i = 0; i < stems.size(); ++i) {
    INFO("vector: " << stems[i]);
    auto msg = decode_message(golden[i], trailing::reject);
    REQUIRE(msg);
    REQUIRE(conduit.send(*msg));
    CHECK(to_hex(next_payload(*theirs)) == to_hex(golden[i]));
  }

  // Receiving: each payload the peer sends is decoded as exactly one Message, in order.
  for (const auto& bytes : golden)
    REQUIRE(theirs->send(bytes));
  for (size_t i = 0; i < stems.size(); ++i) {
    INFO("vector: " << stems[i]);
    auto got = conduit.recv();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(to_hex(encode_message(**got)) == to_hex(golden[i]));
    if (stems[i] == "message_request_call") {
      // The values the reference's generator wrote (wire-format.md §9).
      CHECK((*got)->connection_id == 2);
      auto* rm = std::get_if<request_message>(&(*got)->payload);
      REQUIRE(rm);
      CHECK(rm->id == 11);
      auto* call = std::get_if<request_call>(&rm->body);
      REQUIRE(call);
      CHECK(call->method_id == 0xE5A1D6B2C390F001ull);
      CHECK(call->metadata.size() == 3);
      CHECK(to_hex(call->args) == "f8acd19101");
      CHECK(call->schemas.empty());
    }
  }

  // A payload that is not a Message is the peer's error, not a link failure; the end of
  // the peer's stream is a clean end.
  REQUIRE(theirs->send(byte_buffer{0x00, 0x09})); // connection 0, payload variant 9 of 0..8
  auto bad = conduit.recv();
  REQUIRE_FALSE(bad);
  CHECK(is_decode_error(bad.error()));
  theirs->close();
  auto end = conduit.recv();
  REQUIRE(end);
  CHECK_FALSE(*end);
}

// r[verify transport.prologue.requested-mode]
TEST_CASE("the initiator requests exactly one conduit mode, bare or stable, and takes no other",
          "[transport]") {
  for (auto mode : {conduit_mode::bare, conduit_mode::stable}) {
    for (bool echo : {true, false}) {
      INFO("requested: " << to_string(mode) << (echo ? ", accepted as requested" : ", the other mode accepted"));
      auto links = make_memory_link_pair();
      auto initiator_link = links.first;
      auto acceptor_link = links.second;
      watchdog dog_i{initiator_link};
      watchdog dog_a{acceptor_link};
      std::optional<caf::expected<conduit_mode>> initiated;
      peer_thread initiator{[initiator_link] { initiator_link->abort(); },
                            [&] { initiated.emplace(initiate_transport(*initiator_link, mode)); }};
      // One 8-byte TransportHello that names the one mode: VOTH, version 9, mode byte
      // (0 bare, 1 stable), reserved zeros. No list, no second hello.
      auto hello = next_payload(*acceptor_link);
      CHECK(to_hex(hello) == (mode == conduit_mode::bare ? "564f544809000000" : "564f544809010000"));
      auto other = mode == conduit_mode::bare ? conduit_mode::stable : conduit_mode::bare;
      auto answer = encode_prologue_message(
        {transport_accept_magic, transport_prologue_version, static_cast<uint8_t>(echo ? mode : other)});
      REQUIRE(acceptor_link->send(answer));
      initiator.join();
      REQUIRE(initiated);
      if (echo) {
        REQUIRE(*initiated);
        CHECK(**initiated == mode);
      } else {
        // The request was exact: an accept of the other mode is refused, not adopted.
        REQUIRE_FALSE(*initiated);
        CHECK(is(initiated->error(), errc::prologue_failed));
      }
    }
  }
}
