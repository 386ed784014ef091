// The CBOR handshake messages against the bytes tools/check_vectors.py builds.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "protocol/cbor.hpp"
#include "protocol/error.hpp"
#include "protocol/handshake.hpp"
#include "support/vectors.hpp"

using namespace vox;

namespace {

// INFO lines of tools/check_vectors.py ([handshake]).
const std::string hello_prefix =
  "a16548656c6c6fa566706172697479a1634f6464f673636f6e6e656374696f6e5f73657474696e6773a26670"
  "6172697479a1634f6464f6776d61785f636f6e63757272656e745f72657175657374731840766d657373616765"
  "5f7061796c6f61645f736368656d61";
const std::string hello_suffix = "6e737570706f7274735f7265747279f46a726573756d655f6b6579f6";
const std::string hello_yourself_prefix =
  "a16d48656c6c6f596f757273656c66a473636f6e6e656374696f6e5f73657474696e6773a266706172697479a1"
  "644576656ef6776d61785f636f6e63757272656e745f72657175657374731840766d6573736167655f7061796c"
  "6f61645f736368656d61";
const std::string hello_yourself_suffix =
  "6e737570706f7274735f7265747279f46a726573756d655f6b6579a165627974657350000102030405060708090a"
  "0b0c0d0e0f";

byte_buffer blob() {
  return vox::test::read_vector("message-payload-schema.cbor");
}

hello default_hello() {
  hello h;
  h.parity = parity::odd;
  h.settings = connection_settings{parity::odd, 64};
  return h;
}

byte_buffer key_0_to_15() {
  byte_buffer key;
  for (uint8_t i = 0; i < 16; ++i)
    key.push_back(i);
  return key;
}

/// A Hello body written by hand, so tests control key order and presence.
template <class Body>
byte_buffer wrapped(const char* variant, Body body) {
  byte_buffer out;
  cbor_writer w{out};
  w.write_map_header(1);
  w.write_text(variant);
  body(w);
  return out;
}

void write_parity(cbor_writer& w, const char* name) {
  w.write_map_header(1);
  w.write_text(name);
  w.write_null();
}

void write_settings(cbor_writer& w, const char* parity_name, uint64_t max) {
  w.write_map_header(2);
  w.write_text("max_concurrent_requests");
  w.write_uint(max);
  w.write_text("parity");
  write_parity(w, parity_name);
}

} // namespace

// r[verify session.handshake.cbor]
TEST_CASE("a Hello with an empty schema list encodes to the reference bytes", "[protocol][handshake]") {
  CHECK(to_hex(encode_handshake(default_hello())) == hello_prefix + "80" + hello_suffix);
}

// r[verify session.handshake.cbor]
TEST_CASE("a Hello embedding the reference schema blob encodes to the reference bytes",
          "[protocol][handshake]") {
  auto schema = blob();
  REQUIRE(schema.size() == 6569);
  auto h = default_hello();
  h.message_payload_schema = schema;
  auto encoded = encode_handshake(h);
  CHECK(encoded.size() == 6701);
  CHECK(to_hex(encoded) == hello_prefix + to_hex(schema) + hello_suffix);
}

// r[verify session.handshake.cbor]
TEST_CASE("a HelloYourself with a resume key encodes to the reference bytes",
          "[protocol][handshake]") {
  hello_yourself hy;
  hy.settings = connection_settings{parity::even, 64};
  hy.message_payload_schema = blob();
  hy.resume_key = key_0_to_15();
  CHECK(to_hex(encode_handshake(hy))
        == hello_yourself_prefix + to_hex(hy.message_payload_schema) + hello_yourself_suffix);
}

// r[verify session.handshake.cbor]
TEST_CASE("LetsGo and Sorry encode to the reference bytes", "[protocol][handshake]") {
  CHECK(to_hex(encode_handshake(lets_go{})) == "a1664c657473476fa0");
  CHECK(to_hex(encode_handshake(sorry{"x"})) == "a165536f727279a166726561736f6e6178");
}

TEST_CASE("all four handshake messages survive a round trip", "[protocol][handshake]") {
  auto h = default_hello();
  h.parity = parity::even;
  h.settings = connection_settings{parity::even, 0xffffffff};
  h.message_payload_schema = blob();
  h.supports_retry = true;
  h.resume_key = key_0_to_15();
  hello_yourself hy;
  hy.settings = connection_settings{parity::odd, 7};
  hy.resume_key = byte_buffer{}; // present but empty is distinct from absent
  const std::vector<handshake_message> messages = {h, hy, lets_go{}, sorry{"session resume key mismatch"}};
  for (const auto& msg : messages) {
    CAPTURE(handshake_message_name(msg));
    auto decoded = decode_handshake(encode_handshake(msg));
    REQUIRE(decoded);
    if (std::holds_alternative<hello_yourself>(msg)) {
      // An empty schema is written as [] and reads back as the raw item "80".
      auto got = std::get<hello_yourself>(*decoded);
      CHECK(to_hex(got.message_payload_schema) == "80");
      got.message_payload_schema.clear();
      CHECK(got == hy);
    } else {
      CHECK(*decoded == msg);
    }
  }
}

TEST_CASE("the decoder finds fields by name, skips unknown keys and applies defaults",
          "[protocol][handshake]") {
  auto data = wrapped("Hello", [](cbor_writer& w) {
    w.write_map_header(4);
    w.write_text("message_payload_schema");
    w.write_array_header(0);
    w.write_text("from_the_future");
    w.write_map_header(1);
    w.write_text("x");
    w.write_array_header(0);
    w.write_text("connection_settings");
    write_settings(w, "Odd", 32);
    w.write_text("parity");
    write_parity(w, "Odd");
  });
  auto decoded = decode_handshake(data);
  REQUIRE(decoded);
  auto h = std::get<hello>(*decoded);
  CHECK(h.parity == parity::odd);
  CHECK(h.settings == connection_settings{parity::odd, 32});
  CHECK(to_hex(h.message_payload_schema) == "80");
  CHECK_FALSE(h.supports_retry);
  CHECK_FALSE(h.resume_key);
}

TEST_CASE("the decoder rejects Hellos with missing or wrongly typed fields",
          "[protocol][handshake]") {
  auto hello_with = [](bool schema_present, auto schema_value, uint64_t max) {
    return wrapped("Hello", [&](cbor_writer& w) {
      w.write_map_header(schema_present ? 3 : 2);
      w.write_text("parity");
      write_parity(w, "Odd");
      w.write_text("connection_settings");
      write_settings(w, "Odd", max);
      if (schema_present) {
        w.write_text("message_payload_schema");
        schema_value(w);
      }
    });
  };
  auto empty_array = [](cbor_writer& w) { w.write_array_header(0); };
  REQUIRE(decode_handshake(hello_with(true, empty_array, 64)));
  SECTION("message_payload_schema is required") {
    CHECK_FALSE(decode_handshake(hello_with(false, empty_array, 64)));
  }
  SECTION("message_payload_schema must be an array") {
    auto result = decode_handshake(hello_with(true, [](cbor_writer& w) { w.write_null(); }, 64));
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::cbor_malformed));
  }
  SECTION("max_concurrent_requests must fit u32") {
    CHECK(decode_handshake(hello_with(true, empty_array, 0xffffffff)));
    CHECK_FALSE(decode_handshake(hello_with(true, empty_array, 0x100000000)));
  }
  SECTION("parity must name Odd or Even") {
    auto data = wrapped("Hello", [](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("parity");
      write_parity(w, "Both");
      w.write_text("connection_settings");
      write_settings(w, "Odd", 1);
      w.write_text("message_payload_schema");
      w.write_array_header(0);
    });
    CHECK_FALSE(decode_handshake(data));
  }
  SECTION("resume_key must be null or {bytes: bstr}") {
    auto data = wrapped("HelloYourself", [](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("connection_settings");
      write_settings(w, "Even", 1);
      w.write_text("message_payload_schema");
      w.write_array_header(0);
      w.write_text("resume_key");
      w.write_bytes(byte_buffer(16, 0));
    });
    CHECK_FALSE(decode_handshake(data));
  }
  SECTION("supports_retry must be a boolean") {
    auto data = wrapped("HelloYourself", [](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("connection_settings");
      write_settings(w, "Even", 1);
      w.write_text("message_payload_schema");
      w.write_array_header(0);
      w.write_text("supports_retry");
      w.write_uint(1);
    });
    CHECK_FALSE(decode_handshake(data));
  }
}

TEST_CASE("every truncation of an encoded Hello fails cleanly", "[protocol][handshake]") {
  auto h = default_hello();
  h.message_payload_schema = blob();
  h.resume_key = key_0_to_15();
  auto encoded = encode_handshake(h);
  size_t accepted = 0;
  for (size_t n = 0; n < encoded.size(); ++n) {
    auto result = decode_handshake(byte_span{encoded.data(), n});
    if (result)
      ++accepted;
    else
      CHECK(is(result.error(), errc::cbor_malformed));
  }
  CHECK(accepted == 0);
  CHECK(decode_handshake(encoded));
}

TEST_CASE("garbage is not a handshake message", "[protocol][handshake]") {
  for (auto hex : {"", "00", "ff", "f6", "a0", "80", "6548656c6c6f",
                   "a2664c657473476fa0664c657473476fa0", // two entries
                   "a1664c657473476ff6",                 // LetsGo: null
                   "a1664c657473476fa000",               // trailing byte
                   "a165536f727279a0",                   // Sorry without reason
                   "a1674578706c6f6465a0",               // unknown variant "Explode"
                   "564f544809000000"}) {                // a transport prologue
    CAPTURE(hex);
    auto result = decode_handshake(from_hex(hex));
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::cbor_malformed));
  }
  byte_buffer bomb(100000, 0xa1);
  CHECK_FALSE(decode_handshake(bomb));
}

TEST_CASE("corrupted Hellos either fail or decode to something that round-trips",
          "[protocol][handshake]") {
  auto h = default_hello();
  h.message_payload_schema = from_hex("8102"); // short, so corruptions hit the fields
  h.resume_key = key_0_to_15();
  auto encoded = encode_handshake(h);
  std::mt19937 rng{7}; // fixed seed: the same corruptions on every run
  size_t decoded = 0;
  for (int round = 0; round < 5000; ++round) {
    auto copy = encoded;
    copy[rng() % copy.size()] = static_cast<uint8_t>(rng());
    auto msg = decode_handshake(copy);
    if (!msg) {
      CHECK(is(msg.error(), errc::cbor_malformed));
      continue;
    }
    ++decoded;
    auto again = decode_handshake(encode_handshake(*msg));
    REQUIRE(again);
    CHECK(*again == *msg);
  }
  CHECK(decoded > 0);
}
