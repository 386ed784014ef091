// Every golden vector of the reference decodes to its documented value and re-encodes to
// the same bytes (vectors/README.md).
#include <catch2/catch.hpp>

#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "protocol/message.hpp"
#include "protocol/result.hpp"
#include "support/sample_types.hpp"
#include "support/vectors.hpp"

using namespace vox;
using vox::test::read_vector;

namespace {

using check_fn = std::function<void(const byte_buffer&)>;

/// Decodes `bytes` strictly as T, compares with `expected`, re-encodes byte for byte.
template <class T>
check_fn expect(T expected) {
  return [expected](const byte_buffer& bytes) {
    auto decoded = decode<T>(bytes);
    INFO("bytes " << to_hex(bytes));
    REQUIRE(decoded);
    CHECK(*decoded == expected);
    CHECK(to_hex(encode(*decoded)) == to_hex(bytes));
    CHECK(to_hex(encode(expected)) == to_hex(bytes));
  };
}

/// Runs the table against `folder`: every file has an entry and every entry a file.
void check_folder(const std::string& folder, const std::map<std::string, check_fn>& table) {
  auto stems = vox::test::vector_stems(folder);
  REQUIRE(stems.size() == table.size());
  for (const auto& stem : stems) {
    DYNAMIC_SECTION(folder << "/" << stem) {
      auto it = table.find(stem);
      REQUIRE(it != table.end());
      auto bytes = read_vector(folder + "/" + stem + ".bin");
      REQUIRE_FALSE(bytes.empty());
      it->second(bytes);
    }
  }
}

metadata sample_meta() {
  return {{"trace-id", std::string{"abc123"}, 0},
          {"auth", bytes{0xde, 0xad, 0xbe, 0xef}, 3},
          {"attempt", uint64_t{2}, 0}};
}

} // namespace

TEST_CASE("varint vectors decode to their values and re-encode identically", "[protocol][vectors]") {
  std::map<std::string, check_fn> table;
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 255ull, 256ull, 16383ull, 16384ull, 65535ull,
                     65536ull, 1048576ull})
    table["u64_" + std::to_string(v)] = expect<uint64_t>(v);
  check_folder("varint", table);
}

TEST_CASE("primitive vectors decode to their values and re-encode identically", "[protocol][vectors]") {
  std::map<std::string, check_fn> t;
  t["bool_false"] = expect(false);
  t["bool_true"] = expect(true);
  t["u8_0"] = expect<uint8_t>(0);
  t["u8_127"] = expect<uint8_t>(127);
  t["u8_255"] = expect<uint8_t>(255);
  t["i8_0"] = expect<int8_t>(0);
  t["i8_neg1"] = expect<int8_t>(-1);
  t["i8_127"] = expect<int8_t>(127);
  t["i8_neg128"] = expect<int8_t>(-128);
  for (auto [n, v] : std::map<std::string, uint16_t>{
         {"0", 0}, {"127", 127}, {"128", 128}, {"255", 255}, {"256", 256}, {"max", 65535}})
    t["u16_" + n] = expect<uint16_t>(v);
  for (auto [n, v] : std::map<std::string, int16_t>{
         {"0", 0}, {"1", 1}, {"neg1", -1}, {"127", 127}, {"128", 128}, {"max", 32767}, {"min", -32768}})
    t["i16_" + n] = expect<int16_t>(v);
  for (auto [n, v] : std::map<std::string, uint32_t>{
         {"0", 0}, {"1", 1}, {"127", 127}, {"128", 128}, {"255", 255}, {"256", 256}, {"max", 4294967295u}})
    t["u32_" + n] = expect<uint32_t>(v);
  for (auto [n, v] : std::map<std::string, int32_t>{{"0", 0},
                                                    {"1", 1},
                                                    {"neg1", -1},
                                                    {"127", 127},
                                                    {"128", 128},
                                                    {"neg128", -128},
                                                    {"max", std::numeric_limits<int32_t>::max()},
                                                    {"min", std::numeric_limits<int32_t>::min()}})
    t["i32_" + n] = expect<int32_t>(v);
  for (auto [n, v] : std::map<std::string, uint64_t>{
         {"0", 0}, {"1", 1}, {"127", 127}, {"128", 128}, {"max", std::numeric_limits<uint64_t>::max()}})
    t["u64_" + n] = expect<uint64_t>(v);
  for (auto [n, v] : std::map<std::string, int64_t>{{"0", 0},
                                                    {"1", 1},
                                                    {"neg1", -1},
                                                    {"15", 15},
                                                    {"42", 42},
                                                    {"max", std::numeric_limits<int64_t>::max()},
                                                    {"min", std::numeric_limits<int64_t>::min()}})
    t["i64_" + n] = expect<int64_t>(v);
  for (auto [n, v] : std::map<std::string, double>{
         {"0", 0.0}, {"1", 1.0}, {"neg1", -1.0}, {"1_5", 1.5}, {"0_25", 0.25}}) {
    t["f32_" + n] = expect<float>(static_cast<float>(v));
    t["f64_" + n] = expect<double>(v);
  }
  t["string_empty"] = expect<std::string>("");
  t["string_hello"] = expect<std::string>("hello world");
  t["string_unicode"] = expect<std::string>("h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\xa6\x80");
  t["bytes_empty"] = expect(std::vector<uint8_t>{});
  t["bytes_deadbeef"] = expect(std::vector<uint8_t>{0xde, 0xad, 0xbe, 0xef});
  t["option_none_u32"] = expect(std::optional<uint32_t>{});
  t["option_some_u32_42"] = expect(std::optional<uint32_t>{42});
  t["option_none_string"] = expect(std::optional<std::string>{});
  t["option_some_string"] = expect(std::optional<std::string>{"hello"});
  t["vec_empty_u32"] = expect(std::vector<uint32_t>{});
  t["vec_u32_1_2_3"] = expect(std::vector<uint32_t>{1, 2, 3});
  t["vec_i32_neg1_0_1"] = expect(std::vector<int32_t>{-1, 0, 1});
  t["vec_string"] = expect(std::vector<std::string>{"a", "b"});
  check_folder("primitives", t);
}

TEST_CASE("composite vectors decode to their values and re-encode identically", "[protocol][vectors]") {
  using namespace vox::test;
  std::map<std::string, check_fn> t;
  t["enum_red"] = expect(color::red);
  t["enum_green"] = expect(color::green);
  t["enum_blue"] = expect(color::blue);
  t["enum_circle"] = expect(shape{std::in_place_index<0>, 3.14});
  t["enum_rect"] = expect(shape{std::in_place_index<1>, rect{10.0, 20.0}});
  t["enum_empty"] = expect(shape{std::in_place_index<2>});
  t["map_string_point"] = expect(std::map<std::string, point>{{"key", {10, 20}}});
  t["map_string_u32"] = expect(std::map<std::string, uint32_t>{{"alpha", 1}, {"beta", 2}});
  t["option_none_point"] = expect(std::optional<point>{});
  t["option_some_point"] = expect(std::optional<point>{point{5, 6}});
  t["struct_nested"] = expect(nested{"test", {1, 2}, {"a", "bb"}});
  t["struct_point"] = expect(point{10, -20});
  t["tuple_bool_i64"] = expect(std::tuple<bool, int64_t>{true, -99});
  t["tuple_u32_string"] = expect(std::tuple<uint32_t, std::string>{42, "hello"});
  t["vec_points"] = expect(std::vector<point>{{1, 2}, {3, 4}, {5, 6}});
  check_folder("composite", t);
}

TEST_CASE("result vectors decode to their values and re-encode identically", "[protocol][vectors]") {
  using unit_result = call_result<unit>;
  std::map<std::string, check_fn> t;
  t["err_cancelled"] = expect(unit_result{std::in_place_index<1>, cancelled{}});
  t["err_invalid_payload"] = expect(unit_result{std::in_place_index<1>, invalid_payload{""}});
  t["err_unknown_method"] = expect(unit_result{std::in_place_index<1>, unknown_method{}});
  t["err_user_string"] = expect(call_result<unit, std::string>{
    std::in_place_index<1>, vox_error<std::string>{std::in_place_index<0>, "oops"}});
  t["ok_string"] = expect(call_result<std::string>{std::in_place_index<0>, "hello"});
  t["ok_u32"] = expect(call_result<uint32_t>{std::in_place_index<0>, 42u});
  check_folder("result", t);
}

TEST_CASE("wire vectors decode to their Messages and re-encode identically", "[protocol][vectors]") {
  auto m = [](connection_id c, message_payload p) { return expect(message{c, std::move(p)}); };
  const auto meta = sample_meta();
  std::map<std::string, check_fn> t;
  t["message_protocol_error"] = m(0, protocol_error{"bad frame sequence"});
  t["message_connection_open"] = m(2, connection_open{{parity::odd, 64}, meta});
  t["message_connection_accept"] = m(2, connection_accept{{parity::even, 96}, meta});
  t["message_connection_reject"] = m(4, connection_reject{meta});
  t["message_connection_close"] = m(2, connection_close{meta});
  t["message_request_call"] = m(2, request_message{11, request_call{0xE5A1D6B2C390F001ull, meta,
                                                                    payload{0xf8, 0xac, 0xd1, 0x91, 0x01},
                                                                    {}}});
  t["message_request_response"]
    = m(2, request_message{11, request_response{meta, payload{0x8c, 0xe0, 0xba, 0xd6, 0x0f}, {}}});
  t["message_request_cancel"] = m(2, request_message{11, request_cancel{meta}});
  t["message_channel_item"] = m(2, channel_message{3, channel_item{payload{0x4d}}});
  t["message_channel_close"] = m(2, channel_message{3, channel_close{meta}});
  t["message_channel_reset"] = m(2, channel_message{3, channel_reset{meta}});
  t["message_channel_grant_credit"] = m(2, channel_message{3, channel_grant_credit{1024}});
  check_folder("wire", t);
}

TEST_CASE("the golden vector set is complete: all 116 files are checked", "[protocol][vectors]") {
  size_t total = 0;
  for (auto folder : {"varint", "primitives", "composite", "result", "wire"})
    total += vox::test::vector_stems(folder).size();
  // vectors/README.md: 11 varint + 72 primitives + 15 composite + 6 result + 12 wire.
  CHECK(total == 116);
}

TEST_CASE("Ping and Pong encode as the reference prints them", "[protocol]") {
  // check_vectors.py INFO: Ping { nonce: 1 } on connection 0 is 000701.
  CHECK(to_hex(encode_message(message{0, ping{1}})) == "000701");
  CHECK(to_hex(encode_message(message{0, pong{1}})) == "000801");
}
