// The stable conduit's bytes: Frame and the two hellos (wire-format.md §8).
#include <catch2/catch.hpp>

#include "protocol/error.hpp"
#include "protocol/stable_frame.hpp"
#include "support/vectors.hpp"

using namespace vox;

namespace {

std::string hex(byte_span b) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto x : b) {
    out += digits[x >> 4];
    out += digits[x & 15];
  }
  return out;
}

byte_buffer frame_bytes(stable::frame_header h, byte_buffer item) {
  byte_buffer out;
  stable::encode_frame(out, h, item);
  return out;
}

} // namespace

// r[verify stable.framing.encoding]
TEST_CASE("stable frames encode as the reference's vector and decode back", "[protocol][stable]") {
  // The TS unit test's vector: {seq 7, ack null, item 010203}.
  auto f = frame_bytes({7, std::nullopt}, {1, 2, 3});
  CHECK(hex(f) == "070003000000010203");
  auto d = stable::decode_frame(f);
  REQUIRE(d);
  CHECK(d->header.seq == 7);
  CHECK_FALSE(d->header.ack);
  CHECK(hex(d->item) == "010203");
  // seq 129 (varint 81 01), ack Some(42), item aabb, as tools/check_vectors.py encodes it.
  auto g = frame_bytes({129, 42}, {0xaa, 0xbb});
  CHECK(hex(g) == "8101012a02000000aabb");
  auto e = stable::decode_frame(g);
  REQUIRE(e);
  CHECK(e->header.seq == 129);
  CHECK(e->header.ack == 42u);
  // The largest sequence numbers survive.
  auto h = stable::decode_frame(frame_bytes({0xffffffffu, 0xfffffffeu}, {}));
  REQUIRE(h);
  CHECK(h->header.seq == 0xffffffffu);
  CHECK(h->header.ack == 0xfffffffeu);
  CHECK(h->item.empty());
}

TEST_CASE("malformed stable frames are errors, never a crash", "[protocol][stable]") {
  auto good = frame_bytes({1, 0}, {9, 9});
  for (size_t n = 0; n < good.size(); ++n) {
    INFO("truncated to " << n);
    CHECK_FALSE(stable::decode_frame(byte_span{good.data(), n}));
  }
  auto longer = good;
  longer.push_back(0);
  CHECK(is(stable::decode_frame(longer).error(), errc::trailing_bytes));
  CHECK(is(stable::decode_frame(byte_buffer{1, 2, 0, 0, 0, 0}).error(), errc::invalid_tag));
  // A seq past u32.
  CHECK(is(stable::decode_frame(byte_buffer{0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0, 0}).error(),
           errc::invalid_value));
  // An item length far beyond the input allocates nothing.
  CHECK(is(stable::decode_frame(byte_buffer{1, 0, 0xff, 0xff, 0xff, 0xff}).error(), errc::truncated));
}

// r[verify stable.handshake.client-hello]
// r[verify stable.handshake.server-hello]
TEST_CASE("stable hellos are 25 raw bytes: magic, flags, key, last_received", "[protocol][stable]") {
  CHECK(hex(stable::encode(stable::client_hello{})) == "564f4348" "00" + std::string(32, '0') + "00000000");
  stable::key k{};
  for (size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<uint8_t>(i);
  stable::client_hello ch{k, 0x01020304u};
  auto cb = stable::encode(ch);
  CHECK(hex(cb) == "564f434803000102030405060708090a0b0c0d0e0f04030201");
  CHECK(stable::looks_like_client_hello(cb));
  CHECK(stable::parse_client_hello(cb) == ch);
  stable::server_hello sh{false, k, 7};
  auto sb = stable::encode(sh);
  CHECK(hex(sb) == "564f534802000102030405060708090a0b0c0d0e0f07000000");
  CHECK(stable::parse_server_hello(sb) == sh);
  CHECK(stable::parse_server_hello(stable::encode(stable::server_hello{true, {}, std::nullopt}))->rejected);
  // Wrong magic, size or flags.
  CHECK_FALSE(stable::parse_server_hello(cb));
  CHECK_FALSE(stable::parse_client_hello(sb));
  CHECK_FALSE(stable::parse_client_hello(byte_span{cb.data(), 24}));
  auto odd = cb;
  odd[4] = 4;
  CHECK(is(stable::parse_client_hello(odd).error(), errc::handshake_failed));
}

// r[verify stable.seq]
TEST_CASE("sequence numbers compare in serial-number order across the wrap", "[protocol][stable]") {
  CHECK(stable::seq_after(1, 0));
  CHECK_FALSE(stable::seq_after(0, 0));
  CHECK_FALSE(stable::seq_after(0, 1));
  CHECK(stable::seq_after(0, 0xffffffffu));
  CHECK(stable::seq_after(5, 0xfffffff0u));
  CHECK_FALSE(stable::seq_after(0xfffffff0u, 5));
  CHECK(stable::seq_after(0x7fffffffu, 0));
  CHECK_FALSE(stable::seq_after(0x80000000u, 0));
}
