// Length-prefix framing: the header encoding and the size check every receiver applies.
#include <catch2/catch.hpp>

#include "protocol/error.hpp"
#include "transport/framing.hpp"

using namespace vox;

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

TEST_CASE("a frame exactly at the limit passes the size check and one byte more does not",
          "[transport]") {
  CHECK_FALSE(check_frame_size(64, 64));
  CHECK(is(check_frame_size(65, 64), errc::frame_too_large));
  CHECK(is(check_frame_size(0xffffffffu, 16u * 1024 * 1024), errc::frame_too_large));
}
