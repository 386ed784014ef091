// Schema CBOR and content hashes against the reference blob and the Testbed type ids.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "protocol/cbor.hpp"
#include "protocol/error.hpp"
#include "protocol/schema.hpp"
#include "support/vectors.hpp"

using namespace vox;
using namespace vox::schema;

namespace {

using k = schema_kind::tag;
using one_schema = vox::schema::schema; // plain `schema` would also name the namespace
using pk = variant_schema::payload_kind;

constexpr uint64_t id_bool = 0x178367a87f66fb46;
constexpr uint64_t id_u8 = 0x2c8d54f2314d0f20;
constexpr uint64_t id_u32 = 0x281c5be4f2ee63b4;
constexpr uint64_t id_u64 = 0xd9356298b81639ac;
constexpr uint64_t id_i32 = 0x361f4536eee9f991;
constexpr uint64_t id_i64 = 0xc6eb8c46f1e17fba;
constexpr uint64_t id_f64 = 0x3f2e589db81e95bf;
constexpr uint64_t id_string = 0x6d7dce914ee150e8;
constexpr uint64_t id_bytes = 0xba8125876d6388b4;
constexpr uint64_t id_unit = 0xbc5c33249a2dc720;
constexpr uint64_t id_never = 0x5db70a394660f3e6;
constexpr uint64_t id_option = 0xdcafd4de6b7969bb;
constexpr uint64_t id_tuple1 = 0x6847ab90feda71c1;

byte_buffer blob() {
  return vox::test::read_vector("message-payload-schema.cbor");
}

schema_kind primitive(std::string name) {
  schema_kind out;
  out.kind = k::primitive;
  out.name = std::move(name);
  return out;
}

schema_kind container(k tag, std::vector<type_ref> elements) {
  schema_kind out;
  out.kind = tag;
  out.elements = std::move(elements);
  return out;
}

schema_kind structure(std::string name, std::vector<field_schema> fields) {
  schema_kind out;
  out.kind = k::struct_;
  out.name = std::move(name);
  out.fields = std::move(fields);
  return out;
}

schema_kind enumeration(std::string name, std::vector<variant_schema> variants) {
  schema_kind out;
  out.kind = k::enum_;
  out.name = std::move(name);
  out.variants = std::move(variants);
  return out;
}

schema_kind channel(std::string direction) {
  auto out = container(k::channel, {type_ref::var("T")});
  out.direction = std::move(direction);
  return out;
}

field_schema field(std::string name, type_ref type) {
  return field_schema{std::move(name), std::move(type), true};
}

variant_schema unit_variant(std::string name, uint32_t index) {
  return variant_schema{std::move(name), index, pk::unit, {}, {}};
}

variant_schema newtype(std::string name, uint32_t index, type_ref type) {
  return variant_schema{std::move(name), index, pk::newtype, {std::move(type)}, {}};
}

variant_schema struct_variant(std::string name, uint32_t index, std::vector<field_schema> fs) {
  return variant_schema{std::move(name), index, pk::struct_, {}, std::move(fs)};
}

type_ref c(uint64_t id, std::vector<type_ref> args = {}) {
  return type_ref::concrete(id, std::move(args));
}

std::vector<type_ref> vars(std::vector<std::string> names) {
  std::vector<type_ref> out;
  for (auto& n : names)
    out.push_back(type_ref::var(n));
  return out;
}

/// The schema-list CBOR of one schema map built by hand, for malformed-input tests.
template <class Body>
byte_buffer list_of_one(Body body) {
  byte_buffer out;
  cbor_writer w{out};
  w.write_array_header(1);
  body(w);
  return out;
}

} // namespace

// r[verify schema.cbor]
TEST_CASE("the reference schema blob decodes to the 31 Message schemas", "[protocol][schema]") {
  auto data = blob();
  REQUIRE(data.size() == 6569);
  auto list = decode_schema_list(data);
  REQUIRE(list);
  REQUIRE(list->size() == 31);
  CHECK(list->front().kind.kind == k::primitive);
  CHECK(list->front().kind.name == "u64");
  CHECK(list->back().kind.kind == k::struct_);
  CHECK(list->back().kind.name == "Message");
  CHECK(list->back().id == 0xabdc0766fa9120bfull);
  // The quirk of wire-format.md §6: the one generic list schema, Vec<T>.
  const auto& vec = (*list)[9];
  CHECK(vec.kind.kind == k::list);
  CHECK(vec.type_params == std::vector<std::string>{"T"});
}

// r[verify schema.cbor]
TEST_CASE("re-encoding the decoded blob is byte-identical", "[protocol][schema]") {
  auto data = blob();
  auto list = decode_schema_list(data);
  REQUIRE(list);
  CHECK(to_hex(encode_schema_list(*list)) == to_hex(data));
}

// r[verify schema.type-id]
TEST_CASE("every schema id in the blob is the content hash of its kind", "[protocol][schema]") {
  auto list = decode_schema_list(blob());
  REQUIRE(list);
  for (const auto& s : *list) {
    CAPTURE(s.kind.name);
    CHECK(content_hash(s.kind, s.type_params) == s.id);
  }
}

// r[verify schema.type-id]
TEST_CASE("primitive hashes match the Testbed type ids", "[protocol][schema]") {
  CHECK(content_hash(primitive("bool"), {}) == id_bool);
  CHECK(content_hash(primitive("u8"), {}) == id_u8);
  CHECK(content_hash(primitive("u32"), {}) == id_u32);
  CHECK(content_hash(primitive("u64"), {}) == id_u64);
  CHECK(content_hash(primitive("i32"), {}) == id_i32);
  CHECK(content_hash(primitive("i64"), {}) == id_i64);
  CHECK(content_hash(primitive("f64"), {}) == id_f64);
  CHECK(content_hash(primitive("string"), {}) == id_string);
  CHECK(content_hash(primitive("bytes"), {}) == id_bytes);
  CHECK(content_hash(primitive("unit"), {}) == id_unit);
  CHECK(content_hash(primitive("never"), {}) == id_never);
}

// r[verify schema.type-id]
TEST_CASE("named struct and enum hashes match the Testbed type ids", "[protocol][schema]") {
  auto point = structure("Point", {field("x", c(id_i32)), field("y", c(id_i32))});
  CHECK(content_hash(point, {}) == 0xb92332c67187108full);
  // `required` is not part of the identity.
  point.fields[1].required = false;
  CHECK(content_hash(point, {}) == 0xb92332c67187108full);

  auto person = structure("Person", {field("name", c(id_string)), field("age", c(id_u8)),
                                     field("email", c(id_option, {c(id_string)}))});
  CHECK(content_hash(person, {}) == 0xc841530b759b8ed0ull);

  auto color = enumeration("Color", {unit_variant("Red", 0), unit_variant("Green", 1),
                                     unit_variant("Blue", 2)});
  CHECK(content_hash(color, {}) == 0x1b57cc7742fabeb0ull);

  auto shape = enumeration(
    "Shape", {struct_variant("Circle", 0, {field("radius", c(id_f64))}),
              struct_variant("Rectangle", 1, {field("width", c(id_f64)), field("height", c(id_f64))}),
              unit_variant("Point", 2)});
  CHECK(content_hash(shape, {}) == 0xe407302c560da502ull);

  auto message = enumeration("Message", {newtype("Text", 0, c(id_string)),
                                         newtype("Number", 1, c(id_i64)),
                                         newtype("Data", 2, c(id_bytes))});
  CHECK(content_hash(message, {}) == 0xbda77ebf97f345a9ull);
}

// r[verify schema.type-id]
TEST_CASE("generic container hashes match the Testbed type ids", "[protocol][schema]") {
  CHECK(content_hash(container(k::option, vars({"T"})), {"T"}) == id_option);
  CHECK(content_hash(container(k::list, vars({"T"})), {"T"}) == 0x0a96b404b4d79d67ull);
  CHECK(content_hash(container(k::tuple, vars({"T0"})), {"T0"}) == id_tuple1);
  CHECK(content_hash(container(k::tuple, vars({"T0", "T1"})), {"T0", "T1"})
        == 0xba0496aa8cee7a4cull);
  CHECK(content_hash(container(k::tuple, vars({"T0", "T1", "T2"})), {"T0", "T1", "T2"})
        == 0xaa510ab07d34f141ull);
  CHECK(content_hash(container(k::tuple, vars({"T0", "T1", "T2", "T3"})),
                     {"T0", "T1", "T2", "T3"})
        == 0x915c6fb5b64f270bull);
  // Channels are hashed with the Rust direction names send/recv, not the CBOR tx/rx.
  CHECK(content_hash(channel("tx"), {"T"}) == 0xc886545a493d06ebull);
  CHECK(content_hash(channel("rx"), {"T"}) == 0x967a48ac345e2f5eull);
  CHECK(content_hash(channel("tx"), {"T"}) != content_hash(channel("rx"), {"T"}));
}

// r[verify schema.type-id]
TEST_CASE("Result and VoxError hashes match the reference", "[protocol][schema]") {
  auto result = enumeration("Result", {newtype("Ok", 0, type_ref::var("T")),
                                       newtype("Err", 1, type_ref::var("E"))});
  CHECK(content_hash(result, {"T", "E"}) == 0x42046de663beeef0ull);
  // Struct and enum type parameters are part of the identity.
  CHECK(content_hash(result, {}) != 0x42046de663beeef0ull);

  auto vox_error = enumeration(
    "VoxError", {newtype("User", 0, type_ref::var("E")), unit_variant("UnknownMethod", 1),
                 newtype("InvalidPayload", 2, c(id_string)), unit_variant("Cancelled", 3),
                 unit_variant("ConnectionClosed", 4), unit_variant("SessionShutdown", 5),
                 unit_variant("SendFailed", 6), unit_variant("Indeterminate", 7)});
  CHECK(content_hash(vox_error, {"E"}) == 0x4cf4b2aeb98a1939ull);
}

// r[verify schema.cbor]
TEST_CASE("the echo SchemaPayload encodes to the reference's bytes and decodes back",
          "[protocol][schema]") {
  // tools/check_vectors.py INFO "SchemaPayload for first echo() call (CBOR)", 229 bytes.
  const std::string expected =
    "a267736368656d617382a36269641b6d7dce914ee150e86b747970655f706172616d7380646b696e64a263746167"
    "697072696d69746976656e7072696d69746976655f7479706566737472696e67a36269641b6847ab90feda71c16b"
    "747970655f706172616d7381625430646b696e64a263746167657475706c6568656c656d656e747381a263746167"
    "63766172646e616d6562543064726f6f74a36374616768636f6e637265746567747970655f69641b6847ab90feda"
    "71c1646172677381a36374616768636f6e637265746567747970655f69641b6d7dce914ee150e8646172677380";
  schema_payload payload;
  payload.schemas.push_back(one_schema{id_string, {}, primitive("string")});
  payload.schemas.push_back(one_schema{id_tuple1, {"T0"}, container(k::tuple, vars({"T0"}))});
  payload.root = c(id_tuple1, {c(id_string)});
  auto encoded = encode_schema_payload(payload);
  CHECK(encoded.size() == 229);
  CHECK(to_hex(encoded) == expected);
  auto decoded = decode_schema_payload(from_hex(expected));
  REQUIRE(decoded);
  CHECK(*decoded == payload);
}

TEST_CASE("every schema kind and variant payload survives a round trip", "[protocol][schema]") {
  std::vector<one_schema> list;
  auto add = [&](schema_kind kind, std::vector<std::string> params = {}) {
    list.push_back(one_schema{content_hash(kind, params), params, std::move(kind)});
  };
  add(primitive("payload"));
  add(structure("Point", {field("x", c(id_i32)), field_schema{"y", c(id_i32), false}}));
  add(enumeration("Mixed", {unit_variant("A", 0), newtype("B", 1, c(id_u8)),
                            variant_schema{"C", 2, pk::tuple, {c(id_u8), c(id_u32)}, {}},
                            struct_variant("D", 3, {field("z", type_ref::var("T"))})}),
      {"T"});
  add(container(k::tuple, {}));
  add(container(k::list, vars({"T"})), {"T"});
  add(container(k::option, vars({"T"})), {"T"});
  add(container(k::map, vars({"K", "V"})), {"K", "V"});
  auto array = container(k::array, {c(id_u8)});
  array.length = 32;
  add(array);
  add(channel("tx"), {"T"});
  add(channel("rx"), {"T"});
  auto decoded = decode_schema_list(encode_schema_list(list));
  REQUIRE(decoded);
  CHECK(*decoded == list);
}

TEST_CASE("keys in any order, unknown keys and a missing type_params are accepted",
          "[protocol][schema]") {
  auto data = list_of_one([](cbor_writer& w) {
    w.write_map_header(3);
    w.write_text("kind");
    w.write_map_header(3);
    w.write_text("primitive_type");
    w.write_text("string");
    w.write_text("future");
    w.write_array_header(2);
    w.write_bool(true);
    w.write_bytes(byte_buffer{1});
    w.write_text("tag");
    w.write_text("primitive");
    w.write_text("note");
    w.write_text("from a newer peer");
    w.write_text("id");
    w.write_uint(id_string);
  });
  auto decoded = decode_schema_list(data);
  REQUIRE(decoded);
  REQUIRE(decoded->size() == 1);
  CHECK(decoded->front().id == id_string);
  CHECK(decoded->front().type_params.empty());
  CHECK(decoded->front().kind == primitive("string"));
}

TEST_CASE("every truncation of the schema blob is rejected", "[protocol][schema]") {
  auto data = blob();
  REQUIRE(data.size() == 6569);
  size_t accepted = 0;
  for (size_t n = 0; n < data.size(); ++n) {
    auto result = decode_schema_list(byte_span{data.data(), n});
    if (result)
      ++accepted;
    else
      CHECK(is(result.error(), errc::cbor_malformed));
  }
  CHECK(accepted == 0);
}

TEST_CASE("a nesting bomb is rejected by the schema decoders", "[protocol][schema]") {
  byte_buffer bomb(100000, 0x81);
  bomb.push_back(0x80);
  CHECK_FALSE(decode_schema_list(bomb));
  CHECK_FALSE(decode_schema_payload(bomb));
  // Deep TypeRef nesting inside an otherwise valid schema: 100 levels of args.
  auto deep = list_of_one([](cbor_writer& w) {
    w.write_map_header(3);
    w.write_text("id");
    w.write_uint(1);
    w.write_text("type_params");
    w.write_array_header(0);
    w.write_text("kind");
    w.write_map_header(2);
    w.write_text("tag");
    w.write_text("list");
    w.write_text("element");
    for (int i = 0; i < 100; ++i) {
      w.write_map_header(3);
      w.write_text("tag");
      w.write_text("concrete");
      w.write_text("type_id");
      w.write_uint(1);
      w.write_text("args");
      w.write_array_header(1);
    }
    w.write_map_header(2);
    w.write_text("tag");
    w.write_text("var");
    w.write_text("name");
    w.write_text("T");
  });
  auto result = decode_schema_list(deep);
  REQUIRE_FALSE(result);
  CHECK(describe(result.error()).find("nesting") != std::string::npos);
}

TEST_CASE("malformed schema CBOR is rejected with an offset", "[protocol][schema]") {
  const std::vector<std::pair<const char*, std::string>> cases = {
    {"empty input", ""},
    {"huge array count", "9bffffffffffffffff"},
    {"huge text length", "81a16269647bffffffffffffffff"},
    {"indefinite array", "9fff"},
    {"indefinite map", "81bfff"},
    {"not an array", "a0"},
    {"trailing bytes", "8000"},
    {"schema is not a map", "8101"},
    {"missing kind", "81a1626964 00"},
    {"id is text", "81a362696461786b747970655f706172616d7380646b696e64a263746167697072696d69746976656e7072696d69746976655f747970656375"
                   "3332"},
    {"integer key", "81a10000"},
  };
  for (const auto& [name, hex] : cases) {
    CAPTURE(name);
    std::string compact;
    for (char ch : hex)
      if (ch != ' ')
        compact.push_back(ch);
    auto bytes = from_hex(compact);
    REQUIRE(bytes.size() * 2 == compact.size());
    auto result = decode_schema_list(bytes);
    REQUIRE_FALSE(result);
    CHECK(is(result.error(), errc::cbor_malformed));
    CHECK(describe(result.error()).find("at byte") != std::string::npos);
  }
}

TEST_CASE("wrong value types and unknown tags in schemas are rejected", "[protocol][schema]") {
  auto schema_with_kind = [](auto kind_body) {
    return list_of_one([&](cbor_writer& w) {
      w.write_map_header(2);
      w.write_text("id");
      w.write_uint(7);
      w.write_text("kind");
      kind_body(w);
    });
  };
  SECTION("the kind tag is an integer") {
    CHECK_FALSE(decode_schema_list(schema_with_kind([](cbor_writer& w) {
      w.write_map_header(1);
      w.write_text("tag");
      w.write_uint(3);
    })));
  }
  SECTION("an unknown kind") {
    CHECK_FALSE(decode_schema_list(schema_with_kind([](cbor_writer& w) {
      w.write_map_header(1);
      w.write_text("tag");
      w.write_text("union");
    })));
  }
  SECTION("an unknown primitive") {
    CHECK_FALSE(decode_schema_list(schema_with_kind([](cbor_writer& w) {
      w.write_map_header(2);
      w.write_text("tag");
      w.write_text("primitive");
      w.write_text("primitive_type");
      w.write_text("u256");
    })));
  }
  SECTION("a channel direction other than tx or rx") {
    CHECK_FALSE(decode_schema_list(schema_with_kind([](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("tag");
      w.write_text("channel");
      w.write_text("direction");
      w.write_text("send");
      w.write_text("element");
      w.write_map_header(2);
      w.write_text("tag");
      w.write_text("var");
      w.write_text("name");
      w.write_text("T");
    })));
  }
  SECTION("struct fields given as a map") {
    CHECK_FALSE(decode_schema_list(schema_with_kind([](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("tag");
      w.write_text("struct");
      w.write_text("name");
      w.write_text("S");
      w.write_text("fields");
      w.write_map_header(0);
    })));
  }
  SECTION("a variant index beyond u32") {
    CHECK_FALSE(decode_schema_list(schema_with_kind([](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("tag");
      w.write_text("enum");
      w.write_text("name");
      w.write_text("E");
      w.write_text("variants");
      w.write_array_header(1);
      w.write_map_header(3);
      w.write_text("name");
      w.write_text("V");
      w.write_text("index");
      w.write_uint(uint64_t{1} << 32);
      w.write_text("payload");
      w.write_text("unit");
    })));
  }
  SECTION("a bare-text variant payload other than unit") {
    CHECK_FALSE(decode_schema_list(schema_with_kind([](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("tag");
      w.write_text("enum");
      w.write_text("name");
      w.write_text("E");
      w.write_text("variants");
      w.write_array_header(1);
      w.write_map_header(3);
      w.write_text("name");
      w.write_text("V");
      w.write_text("index");
      w.write_uint(0);
      w.write_text("payload");
      w.write_text("newtype");
    })));
  }
  SECTION("a duplicated key") {
    CHECK_FALSE(decode_schema_list(list_of_one([](cbor_writer& w) {
      w.write_map_header(3);
      w.write_text("id");
      w.write_uint(1);
      w.write_text("id");
      w.write_uint(2);
      w.write_text("kind");
      w.write_map_header(2);
      w.write_text("tag");
      w.write_text("primitive");
      w.write_text("primitive_type");
      w.write_text("u8");
    })));
  }
}

TEST_CASE("the schema payload decoder requires schemas and root", "[protocol][schema]") {
  auto no_root = from_hex("a167736368656d617380");
  auto no_schemas = from_hex("a164726f6f74a26374616763766172646e616d656154");
  auto both = from_hex("a267736368656d61738064726f6f74a26374616763766172646e616d656154");
  REQUIRE(decode_schema_payload(both));
  CHECK_FALSE(decode_schema_payload(no_root));
  CHECK_FALSE(decode_schema_payload(no_schemas));
  CHECK_FALSE(decode_schema_payload(from_hex("80")));
}

TEST_CASE("corrupted schema blobs either fail or decode to something that round-trips",
          "[protocol][schema]") {
  auto data = blob();
  REQUIRE_FALSE(data.empty());
  std::mt19937 rng{20240611}; // fixed seed: the same corruptions on every run
  size_t decoded = 0;
  for (int round = 0; round < 3000; ++round) {
    auto copy = data;
    auto flips = 1 + rng() % 3;
    for (unsigned f = 0; f < flips; ++f)
      copy[rng() % copy.size()] = static_cast<uint8_t>(rng());
    auto list = decode_schema_list(copy);
    if (!list) {
      CHECK(is(list.error(), errc::cbor_malformed));
      continue;
    }
    ++decoded;
    auto again = decode_schema_list(encode_schema_list(*list));
    REQUIRE(again);
    CHECK(*again == *list);
  }
  // Most single-byte changes land in ids or names and still decode: the check above ran.
  CHECK(decoded > 0);
}
