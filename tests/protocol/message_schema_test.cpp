// The Message schema list generated from our own declarations is the reference's blob.
#include <catch2/catch.hpp>

#include "protocol/message.hpp"
#include "protocol/result.hpp"
#include "protocol/schema_gen.hpp"
#include "support/sample_types.hpp"
#include "support/vectors.hpp"

using namespace vox;

// r[verify session.handshake.protocol-schema]
TEST_CASE("generated Message schemas reproduce the reference blob byte for byte", "[protocol][schema]") {
  auto blob = vox::test::read_vector("message-payload-schema.cbor");
  REQUIRE(blob.size() == 6569);
  CHECK(to_hex(message_schema_cbor()) == to_hex(blob));
}

TEST_CASE("the Message schema list has 31 schemas in post-order with Message last", "[protocol][schema]") {
  auto list = schema::schemas_of<message>();
  REQUIRE(list.size() == 31);
  CHECK(list.back().id == 0xabdc0766fa9120bfull);
  CHECK(list.back().kind.name == "Message");
  CHECK(list.front().kind.name == "u64");
}

TEST_CASE("echo's argument and response roots match the reference's type ids", "[protocol][schema]") {
  auto args = schema::schema_payload_of<std::tuple<std::string>>();
  CHECK(args.root
        == schema::type_ref::concrete(0x6847ab90feda71c1ull,
                                      {schema::type_ref::concrete(0x6d7dce914ee150e8ull)}));
  auto ret = schema::schema_payload_of<call_result<std::string>>();
  CHECK(ret.root
        == schema::type_ref::concrete(
          0x42046de663beeef0ull,
          {schema::type_ref::concrete(0x6d7dce914ee150e8ull),
           schema::type_ref::concrete(0x4cf4b2aeb98a1939ull,
                                      {schema::type_ref::concrete(0x5db70a394660f3e6ull)})}));
}

TEST_CASE("a described struct gets the reference's type id", "[protocol][schema]") {
  // Testbed Point { x: i32, y: i32 } (testbed-service.md §2).
  auto p = schema::schema_payload_of<vox::test::point>();
  CHECK(p.root.type_id == 0xb92332c67187108full);
  auto c = schema::schema_payload_of<vox::test::color>();
  CHECK(c.root.type_id == 0x1b57cc7742fabeb0ull);
  auto v = schema::schema_payload_of<std::vector<vox::test::point>>();
  CHECK(v.root.type_id == 0x0a96b404b4d79d67ull);
  auto o = schema::schema_payload_of<std::optional<std::string>>();
  CHECK(o.root.type_id == 0xdcafd4de6b7969bbull);
  auto bytes_root = schema::schema_payload_of<std::vector<uint8_t>>();
  CHECK(bytes_root.root.type_id == 0xba8125876d6388b4ull);
  auto u = schema::schema_payload_of<unit>();
  CHECK(u.root.type_id == 0xbc5c33249a2dc720ull);
}
