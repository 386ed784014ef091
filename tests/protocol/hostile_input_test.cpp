// Decoders never trust the peer: every malformed input is an error value, never a crash,
// a hang or an allocation the input cannot justify (run under ASan/UBSan in CI).
#include <catch2/catch.hpp>

#include <random>

#include "protocol/message.hpp"
#include "protocol/result.hpp"
#include "support/vectors.hpp"

using namespace vox;

namespace {

byte_buffer hex(std::string_view h) { return from_hex(h); }

void require_error(const byte_buffer& input, errc expected) {
  auto m = decode_message(input);
  INFO("input " << to_hex(input));
  REQUIRE_FALSE(m);
  INFO("error " << describe(m.error()));
  CHECK(is(m.error(), expected));
}

} // namespace

TEST_CASE("every truncation of every wire vector is an error", "[protocol][hostile]") {
  for (const auto& stem : vox::test::vector_stems("wire")) {
    auto bytes = vox::test::read_vector("wire/" + stem + ".bin");
    REQUIRE(decode_message(bytes, trailing::reject));
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO(stem << " cut to " << n << " bytes");
      auto m = decode_message(byte_span{bytes.data(), n});
      REQUIRE_FALSE(m);
      CHECK((is(m.error(), errc::truncated) || is(m.error(), errc::length_limit)));
    }
  }
}

TEST_CASE("a varint longer than ten bytes is rejected", "[protocol][hostile]") {
  require_error(hex("80808080808080808080800007"), errc::varint_overflow);
  // Ten bytes whose last one carries bits past 64.
  require_error(hex("ffffffffffffffffff7f0701"), errc::varint_overflow);
}

TEST_CASE("overlong but in-range varints are accepted as the reference does", "[protocol][hostile]") {
  // connection id 0 written as 80 00, then Ping { nonce: 1 }.
  auto m = decode_message(hex("80000701"));
  REQUIRE(m);
  CHECK(*m == message{0, ping{1}});
}

TEST_CASE("a string length past the end of input is rejected", "[protocol][hostile]") {
  require_error(hex("0000ff01616263"), errc::truncated);
}

TEST_CASE("an unknown variant index is rejected at every enum level", "[protocol][hostile]") {
  require_error(hex("0009"), errc::invalid_tag);          // MessagePayload
  require_error(hex("00050103"), errc::invalid_tag);      // RequestBody
  require_error(hex("00060104"), errc::invalid_tag);      // ChannelBody
  require_error(hex("00010200"), errc::invalid_tag);      // Parity
  require_error(hex("0003010161030000"), errc::invalid_tag); // MetadataValue
  require_error(hex("00ffffffffffffffffff01"), errc::invalid_tag);
}

TEST_CASE("a payload length beyond the remaining input is rejected without allocating", "[protocol][hostile]") {
  // Call with method 1, no metadata, args claiming 0xffffffff bytes.
  require_error(hex("02050100010000ffffffff00"), errc::truncated);
  // ChannelItem claiming 16 bytes with 2 present.
  require_error(hex("02060300100000000102"), errc::truncated);
}

TEST_CASE("an absurd metadata count is rejected before any allocation", "[protocol][hostile]") {
  // ConnectionClose with 2^63 entries.
  require_error(hex("020480808080808080808001"), errc::length_limit);
  // A count just over what the remaining bytes could hold.
  require_error(hex("02040500"), errc::length_limit);
}

TEST_CASE("a u32 field wider than 32 bits is rejected", "[protocol][hostile]") {
  // ConnectionOpen { Odd, max_concurrent_requests = 2^32 } with empty metadata.
  require_error(hex("0201008080808010" "00"), errc::invalid_value);
}

TEST_CASE("strings that are not UTF-8 are rejected", "[protocol][hostile]") {
  require_error(hex("000002c328"), errc::invalid_utf8);       // bad continuation
  require_error(hex("000003eda080"), errc::invalid_utf8);     // UTF-16 surrogate
  require_error(hex("000002c0af"), errc::invalid_utf8);       // overlong '/'
  require_error(hex("000004f4908080"), errc::invalid_utf8);   // above U+10FFFF
  require_error(hex("000004f09080"), errc::truncated);         // declared 4, has 3
}

TEST_CASE("invalid bool and Option tags are rejected", "[protocol][hostile]") {
  auto b = decode<bool>(hex("02"));
  REQUIRE_FALSE(b);
  CHECK(is(b.error(), errc::invalid_tag));
  auto o = decode<std::optional<uint32_t>>(hex("022a"));
  REQUIRE_FALSE(o);
  CHECK(is(o.error(), errc::invalid_tag));
  auto r = decode<call_result<uint32_t>>(hex("022a"));
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::invalid_tag));
  auto e = decode<call_result<uint32_t>>(hex("0108"));
  REQUIRE_FALSE(e);
  CHECK(is(e.error(), errc::invalid_tag));
}

TEST_CASE("a sequence of zero-size elements cannot claim unbounded length", "[protocol][hostile]") {
  auto v = decode<std::vector<unit>>(hex("ffffffffffffffff7f"));
  REQUIRE_FALSE(v);
  CHECK(is(v.error(), errc::length_limit));
  auto small = decode<std::vector<unit>>(hex("03"));
  REQUIRE(small);
  CHECK(small->size() == 3);
}

TEST_CASE("the uninhabited never type never decodes", "[protocol][hostile]") {
  auto r = decode<call_result<unit, never>>(hex("0100"));
  REQUIRE_FALSE(r);
  CHECK(is(r.error(), errc::invalid_value));
}

TEST_CASE("trailing bytes are tolerated by default and rejected on request", "[protocol][hostile]") {
  auto lenient = decode_message(hex("000701ff"));
  REQUIRE(lenient);
  auto strict = decode_message(hex("000701ff"), trailing::reject);
  REQUIRE_FALSE(strict);
  CHECK(is(strict.error(), errc::trailing_bytes));
}

TEST_CASE("random corruptions of wire vectors decode to errors or to values that round-trip", "[protocol][hostile]") {
  std::mt19937_64 rng{20261126};
  size_t errors = 0, values = 0;
  for (const auto& stem : vox::test::vector_stems("wire")) {
    auto original = vox::test::read_vector("wire/" + stem + ".bin");
    for (int round = 0; round < 2000; ++round) {
      auto bytes = original;
      auto flips = 1 + rng() % 4;
      for (size_t i = 0; i < flips; ++i)
        bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
      if (rng() % 4 == 0)
        bytes.resize(rng() % (bytes.size() + 1));
      auto m = decode_message(bytes, trailing::reject);
      if (!m) {
        ++errors;
        continue;
      }
      ++values;
      auto again = decode_message(encode_message(*m), trailing::reject);
      REQUIRE(again);
      REQUIRE(*again == *m);
    }
  }
  CHECK(errors > 0);
  CHECK(values > 0);
}

TEST_CASE("metadata flags: SENSITIVE values are redacted, NO_PROPAGATE entries are not forwarded", "[protocol]") {
  metadata md{{"trace", std::string{"t1"}, metadata_flags::none},
              {"token", std::string{"s3cr3t"}, metadata_flags::sensitive},
              {"hop", uint64_t{1}, metadata_flags::no_propagate},
              {"both", bytes{0xaa}, metadata_flags::sensitive | metadata_flags::no_propagate}};
  auto text = to_string(md);
  CHECK(text.find("s3cr3t") == std::string::npos);
  CHECK(text.find("0xaa") == std::string::npos);
  CHECK(text.find("\"trace\"=\"t1\"") != std::string::npos);
  auto fwd = propagated(md);
  REQUIRE(fwd.size() == 2);
  CHECK(fwd[0].key == "trace");
  CHECK(fwd[1].key == "token");
}
