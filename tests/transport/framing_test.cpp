// Length-prefix framing: header encoding and the incremental, I/O-free decoder.
#include <catch2/catch.hpp>

#include <vector>

#include "protocol/error.hpp"
#include "transport/framing.hpp"

using namespace vox;

namespace {

byte_buffer pattern(size_t size, uint8_t seed) {
  byte_buffer out(size);
  for (size_t i = 0; i < size; ++i)
    out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

byte_buffer frame_stream(const std::vector<byte_buffer>& payloads) {
  byte_buffer out;
  for (const auto& p : payloads) {
    append_frame_header(out, static_cast<uint32_t>(p.size()));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

std::vector<byte_buffer> drain(frame_decoder& dec) {
  std::vector<byte_buffer> out;
  while (auto frame = dec.next())
    out.push_back(std::move(*frame));
  return out;
}

} // namespace

// r[verify transport.stream]
TEST_CASE("frame headers are the payload length as u32 little-endian", "[transport]") {
  byte_buffer out;
  append_frame_header(out, 0x01020304);
  append_frame_header(out, 0);
  append_frame_header(out, 0xffffffff);
  append_frame_header(out, 8);
  CHECK(to_hex(out) == "04030201" "00000000" "ffffffff" "08000000");
  CHECK(decode_frame_header(out.data()) == 0x01020304u);
  CHECK(decode_frame_header(out.data() + 8) == 0xffffffffu);
}

// r[verify transport.stream]
// r[verify link.message.empty]
TEST_CASE("the frame decoder reassembles frames fed one byte at a time", "[transport]") {
  std::vector<byte_buffer> payloads{pattern(0, 0),   pattern(1, 1), pattern(5, 2),
                                    pattern(300, 3), pattern(0, 4), pattern(70000, 5),
                                    pattern(4, 6)};
  auto stream = frame_stream(payloads);
  frame_decoder dec{1024 * 1024};
  std::vector<byte_buffer> got;
  bool was_mid_frame = false;
  for (auto b : stream) {
    REQUIRE(dec.feed(byte_span{&b, 1}));
    was_mid_frame = was_mid_frame || dec.mid_frame();
    for (auto& f : drain(dec))
      got.push_back(std::move(f));
  }
  CHECK(was_mid_frame);
  CHECK_FALSE(dec.mid_frame());
  CHECK(got == payloads);
}

TEST_CASE("the frame decoder handles arbitrary chunk boundaries", "[transport]") {
  std::vector<byte_buffer> payloads;
  for (size_t i = 0; i < 200; ++i)
    payloads.push_back(pattern((i * 37) % 600, static_cast<uint8_t>(i)));
  auto stream = frame_stream(payloads);
  for (size_t chunk : {2u, 3u, 13u, 4096u, 1000000u}) {
    frame_decoder dec{1024};
    byte_span rest{stream};
    while (!rest.empty()) {
      auto n = std::min(chunk, rest.size());
      REQUIRE(dec.feed(rest.first(n)));
      rest = rest.subspan(n);
    }
    CHECK(dec.ready() == payloads.size());
    CHECK(drain(dec) == payloads);
    CHECK_FALSE(dec.mid_frame());
  }
}

TEST_CASE("the frame decoder accepts a frame exactly at the limit", "[transport]") {
  auto payload = pattern(64, 9);
  frame_decoder dec{64};
  REQUIRE(dec.feed(frame_stream({payload})));
  auto frame = dec.next();
  REQUIRE(frame);
  CHECK(*frame == payload);
}

TEST_CASE("the frame decoder rejects an oversized header before any body byte arrives",
          "[transport]") {
  frame_decoder dec{64};
  byte_buffer header;
  append_frame_header(header, 65);
  auto fed = dec.feed(header);
  REQUIRE_FALSE(fed);
  CHECK(is(fed.error(), errc::frame_too_large));
  CHECK(describe(fed.error()) == "frame_too_large: frame of 65 bytes exceeds the 64-byte limit");
  // The stream cannot be resynchronised: the decoder stays failed.
  byte_buffer more = frame_stream({pattern(3, 0)});
  auto again = dec.feed(more);
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::frame_too_large));
  CHECK_FALSE(dec.next());
}

TEST_CASE("the frame decoder rejects the largest u32 length", "[transport]") {
  frame_decoder dec{16u * 1024 * 1024};
  byte_buffer header{0xff, 0xff, 0xff, 0xff};
  auto fed = dec.feed(header);
  REQUIRE_FALSE(fed);
  CHECK(describe(fed.error())
        == "frame_too_large: frame of 4294967295 bytes exceeds the 16777216-byte limit");
}

TEST_CASE("the frame decoder tells a clean boundary from a truncated frame", "[transport]") {
  frame_decoder dec{1024};
  CHECK_FALSE(dec.mid_frame());
  byte_buffer stream = frame_stream({pattern(10, 0)});
  REQUIRE(dec.feed(byte_span{stream}.first(2)));
  CHECK(dec.mid_frame());
  REQUIRE(dec.feed(byte_span{stream}.subspan(2, 5)));
  CHECK(dec.mid_frame());
  CHECK_FALSE(dec.next());
  REQUIRE(dec.feed(byte_span{stream}.subspan(7)));
  CHECK_FALSE(dec.mid_frame());
  CHECK(dec.next() == pattern(10, 0));
}
