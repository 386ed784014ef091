// The CBOR reader and writer: shortest-form heads, strict and bounded parsing.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "protocol/cbor.hpp"
#include "protocol/error.hpp"

using namespace vox;

namespace {

std::string hex_of(void (*write)(cbor_writer&)) {
  byte_buffer out;
  cbor_writer w{out};
  write(w);
  return to_hex(out);
}

std::string uint_hex(uint64_t v) {
  byte_buffer out;
  cbor_writer{out}.write_uint(v);
  return to_hex(out);
}

std::string int_hex(int64_t v) {
  byte_buffer out;
  cbor_writer{out}.write_int(v);
  return to_hex(out);
}

} // namespace

TEST_CASE("the writer uses the shortest integer head at every size boundary", "[protocol][cbor]") {
  CHECK(uint_hex(0) == "00");
  CHECK(uint_hex(23) == "17");
  CHECK(uint_hex(24) == "1818");
  CHECK(uint_hex(255) == "18ff");
  CHECK(uint_hex(256) == "190100");
  CHECK(uint_hex(65535) == "19ffff");
  CHECK(uint_hex(65536) == "1a00010000");
  CHECK(uint_hex(0xffffffff) == "1affffffff");
  CHECK(uint_hex(0x100000000) == "1b0000000100000000");
  CHECK(uint_hex(UINT64_MAX) == "1bffffffffffffffff");
  CHECK(int_hex(-1) == "20");
  CHECK(int_hex(-24) == "37");
  CHECK(int_hex(-25) == "3818");
  CHECK(int_hex(INT64_MIN) == "3b7fffffffffffffff");
}

TEST_CASE("the writer encodes strings, containers and simple values", "[protocol][cbor]") {
  CHECK(hex_of([](cbor_writer& w) { w.write_text("Odd"); }) == "634f6464");
  CHECK(hex_of([](cbor_writer& w) { w.write_bytes(byte_buffer{1, 2}); }) == "420102");
  CHECK(hex_of([](cbor_writer& w) { w.write_array_header(0); }) == "80");
  CHECK(hex_of([](cbor_writer& w) { w.write_map_header(24); }) == "b818");
  CHECK(hex_of([](cbor_writer& w) {
          w.write_bool(false);
          w.write_bool(true);
          w.write_null();
        })
        == "f4f5f6");
  CHECK(hex_of([](cbor_writer& w) { w.write_raw(from_hex("a0")); }) == "a0");
}

TEST_CASE("the reader returns what the writer wrote", "[protocol][cbor]") {
  byte_buffer buf;
  cbor_writer w{buf};
  w.write_map_header(2);
  w.write_text("k");
  w.write_uint(UINT64_MAX);
  w.write_text("list");
  w.write_array_header(4);
  w.write_int(-300);
  w.write_bytes(from_hex("beef"));
  w.write_bool(true);
  w.write_null();

  cbor_reader r{buf};
  CHECK(r.peek_type().value() == cbor_type::map);
  CHECK(r.read_map_header().value() == 2);
  CHECK(r.read_text().value() == "k");
  CHECK(r.read_uint().value() == UINT64_MAX);
  CHECK(r.read_text_view().value() == "list");
  CHECK(r.read_array_header().value() == 4);
  CHECK(r.read_int().value() == -300);
  CHECK(to_hex(r.read_bytes().value()) == "beef");
  CHECK(r.read_bool().value());
  CHECK(r.try_read_null());
  CHECK(r.at_end());
}

TEST_CASE("a failed read reports the offset and consumes nothing", "[protocol][cbor]") {
  auto buf = from_hex("0163616263"); // 1, "abc"
  cbor_reader r{buf, 100};
  REQUIRE(r.read_uint().value() == 1);
  auto wrong = r.read_uint();
  REQUIRE_FALSE(wrong);
  CHECK(is(wrong.error(), errc::cbor_malformed));
  CHECK(describe(wrong.error()).find("byte 101") != std::string::npos);
  CHECK(describe(wrong.error()).find("text string") != std::string::npos);
  CHECK(r.position() == 1);
  CHECK(r.read_text().value() == "abc");
}

TEST_CASE("raw_item returns exactly the bytes of the next item", "[protocol][cbor]") {
  auto buf = from_hex("82a1616101f601"); // [{"a": 1}, null], 1
  cbor_reader r{buf};
  auto raw = r.raw_item();
  REQUIRE(raw);
  CHECK(to_hex(*raw) == "82a1616101f6");
  CHECK(r.read_uint().value() == 1);
}

TEST_CASE("declared lengths beyond the input are rejected before allocation", "[protocol][cbor]") {
  for (auto hex : {"5bffffffffffffffff", "7bffffffffffffffff", "9bffffffffffffffff",
                   "bbffffffffffffffff", "5a00010000", "6203", "830102", "a20102"}) {
    auto buf = from_hex(hex);
    CAPTURE(hex);
    cbor_reader r{buf};
    CHECK_FALSE(r.skip_item());
    CHECK(r.position() == 0);
    cbor_reader typed{buf};
    switch (buf[0] >> 5) {
      case 2: CHECK_FALSE(typed.read_bytes()); break;
      case 3: CHECK_FALSE(typed.read_text()); break;
      case 4: CHECK_FALSE(typed.read_array_header()); break;
      default: CHECK_FALSE(typed.read_map_header()); break;
    }
  }
}

TEST_CASE("indefinite lengths, tags, reserved heads and breaks are rejected", "[protocol][cbor]") {
  for (auto hex : {"9f01ff", "bf616101ff", "7f6161ff", "5f4101ff", "c001", "1c", "ff", "18"}) {
    auto buf = from_hex(hex);
    CAPTURE(hex);
    cbor_reader r{buf};
    auto skipped = r.skip_item();
    REQUIRE_FALSE(skipped);
    CHECK(is(skipped.error(), errc::cbor_malformed));
  }
}

TEST_CASE("skip_item accepts 64 levels of nesting and refuses 65", "[protocol][cbor]") {
  auto nested = [](size_t depth) {
    byte_buffer buf(depth, 0x81);
    buf.push_back(0x00);
    return buf;
  };
  auto ok = nested(64);
  cbor_reader r64{ok};
  CHECK(r64.skip_item());
  CHECK(r64.at_end());
  auto deep = nested(65);
  cbor_reader r65{deep};
  CHECK_FALSE(r65.skip_item());
}

TEST_CASE("a nesting bomb of 100000 arrays fails without exhausting the stack", "[protocol][cbor]") {
  byte_buffer bomb(100000, 0x81);
  bomb.push_back(0x80);
  cbor_reader r{bomb};
  auto skipped = r.skip_item();
  REQUIRE_FALSE(skipped);
  CHECK(describe(skipped.error()).find("nesting") != std::string::npos);
  CHECK_FALSE(check_single_item(bomb));
}

TEST_CASE("text strings must be valid UTF-8", "[protocol][cbor]") {
  auto bad = from_hex("62c328"); // truncated two-byte sequence
  cbor_reader r{bad};
  CHECK_FALSE(r.read_text());
  CHECK(r.position() == 0);
  auto good = from_hex("62c3a9"); // "é"
  cbor_reader g{good};
  CHECK(g.read_text().value() == "\xc3\xa9");
}

TEST_CASE("integers outside int64 are refused by read_int", "[protocol][cbor]") {
  auto big = from_hex("1b8000000000000000");
  cbor_reader r{big};
  CHECK_FALSE(r.read_int());
  auto most_negative = from_hex("3b7fffffffffffffff");
  cbor_reader n{most_negative};
  CHECK(n.read_int().value() == INT64_MIN);
}

TEST_CASE("a map view finds keys in any order and refuses duplicates", "[protocol][cbor]") {
  byte_buffer buf;
  cbor_writer w{buf};
  w.write_map_header(3);
  w.write_text("b");
  w.write_uint(2);
  w.write_text("extra");
  w.write_array_header(1);
  w.write_null();
  w.write_text("a");
  w.write_uint(1);
  cbor_reader r{buf};
  auto m = cbor_map::read(r, "Test");
  REQUIRE(m);
  CHECK(r.at_end());
  auto read_uint = [](cbor_reader& vr) { return vr.read_uint(); };
  CHECK(m->get<uint64_t>("a", read_uint).value() == 1);
  CHECK(m->get<uint64_t>("b", read_uint).value() == 2);
  CHECK(m->get_or<uint64_t>("c", 7, read_uint).value() == 7);
  CHECK_FALSE(m->get<uint64_t>("c", read_uint));

  auto dup = from_hex("a2616101616102");
  cbor_reader dr{dup};
  auto dm = cbor_map::read(dr, "Dup");
  REQUIRE(dm);
  CHECK_FALSE(dm->find("a"));

  auto int_key = from_hex("a10101");
  cbor_reader ir{int_key};
  CHECK_FALSE(cbor_map::read(ir, "IntKey"));
}
