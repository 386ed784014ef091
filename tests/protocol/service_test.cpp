// Service declarations: method ids, argument and result codecs, per-method schemas.
#include <catch2/catch.hpp>

#include "protocol/message.hpp"
#include "protocol/schema_tracker.hpp"
#include "protocol/service.hpp"
#include "support/sample_types.hpp"

using namespace vox;

namespace {

enum class math_error : uint8_t { division_by_zero, overflow };
VOX_ENUM(math_error, "MathError", "DivisionByZero", "Overflow")

using echo = method<"echo", std::string(std::string)>;
using divide = method<"divide", int64_t(int64_t, int64_t), math_error>;
using all_colors = method<"all_colors", std::vector<vox::test::color>()>;
using generate_nothing = method<"echo_status_v1", void(uint32_t)>;
using testbed = service<"Testbed", echo, divide, all_colors, generate_nothing>;

} // namespace

// r[verify schema.method-id]
TEST_CASE("a service declaration yields the reference's method ids", "[protocol][service]") {
  CHECK(testbed::id<echo>() == 0x880bc4eee23574beull);
  CHECK(testbed::id<divide>() == 0xfb68d9318f830875ull);
  CHECK(testbed::id<all_colors>() == 0xfbfb05bbcaade4a0ull);
  CHECK(testbed::id<generate_nothing>() == 0xc7c5aa845cfb8bf6ull);
}

TEST_CASE("the first echo call and its response match the documented bytes", "[protocol][service]") {
  // testbed-service.md §5, connection 0, request id 1, empty metadata and schemas.
  message call{0, request_message{1, request_call{testbed::id<echo>(), {}, payload{encode(echo::args_type{"hi"})}, {}}}};
  CHECK(to_hex(encode_message(call)) == "0005010" "0bee9d591ee9df18588010003000000026869" "00");
  message resp{0, request_message{1, request_response{{}, payload{encode(echo::result_type{std::in_place_index<0>, "hi"})}, {}}}};
  CHECK(to_hex(encode_message(resp)) == "000501010004000000000268" "6900");
  divide::result_type err{std::in_place_index<1>, vox_error<math_error>{std::in_place_index<0>, math_error::division_by_zero}};
  message derr{0, request_message{1, request_response{{}, payload{encode(err)}, {}}}};
  CHECK(to_hex(encode_message(derr)) == "00050101000300000001000000");
  message dcall{0, request_message{1, request_call{testbed::id<divide>(), {}, payload{encode(divide::args_type{1, 0})}, {}}}};
  CHECK(to_hex(encode_message(dcall)) == "0005010" "0f5908cfc98a6b6b4fb0100020000000200" "00");
}

TEST_CASE("method schemas have the reference's roots", "[protocol][service]") {
  const auto& s = testbed::schemas<echo>();
  CHECK(s.args.root == schema::type_ref::concrete(0x6847ab90feda71c1ull, {schema::type_ref::concrete(0x6d7dce914ee150e8ull)}));
  CHECK(s.response.root.type_id == 0x42046de663beeef0ull);
  CHECK(testbed::schemas<all_colors>().args.root.type_id == 0xbc5c33249a2dc720ull); // unit
  auto void_ret = testbed::schemas<generate_nothing>().response.root;
  CHECK(void_ret.args.at(0).type_id == 0xbc5c33249a2dc720ull); // Ok = unit
}

// r[verify schema.exchange]
TEST_CASE("a send tracker sends each type id once per connection", "[protocol][service]") {
  schema::send_tracker tracker;
  const auto& e = testbed::schemas<echo>();
  auto first = schema::decode_schema_payload(tracker.prepare(e.args));
  REQUIRE(first);
  CHECK(first->schemas.size() == 2); // string, tuple(T0)
  auto again = schema::decode_schema_payload(tracker.prepare(e.args));
  REQUIRE(again);
  CHECK(again->schemas.empty());
  CHECK(again->root == e.args.root);
  auto resp = schema::decode_schema_payload(tracker.prepare(e.response));
  REQUIRE(resp);
  for (const auto& sch : resp->schemas)
    CHECK(sch.id != 0x6d7dce914ee150e8ull); // string already went out with the args
  tracker.reset();
  auto fresh = schema::decode_schema_payload(tracker.prepare(e.args));
  REQUIRE(fresh);
  CHECK(fresh->schemas.size() == 2);
}

TEST_CASE("a receive tracker rejects duplicate, forged and malformed schemas", "[protocol][service]") {
  schema::send_tracker sender;
  schema::recv_tracker receiver;
  const auto& e = testbed::schemas<echo>();
  auto first = receiver.record(sender.prepare(e.args));
  REQUIRE(first);
  CHECK(*first == e.args.root);
  CHECK(receiver.size() == 2);
  // The same schemas again on the same connection.
  schema::send_tracker naive;
  auto dup = receiver.record(naive.prepare(e.args));
  REQUIRE_FALSE(dup);
  CHECK(is(dup.error(), errc::protocol_violation));
  // A schema whose id is not its content hash.
  auto forged = e.response;
  forged.schemas.back().id ^= 1;
  auto bad = receiver.record(schema::encode_schema_payload(forged));
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), errc::protocol_violation));
  auto garbage = receiver.record(byte_buffer{0xff, 0x00});
  REQUIRE_FALSE(garbage);
}

TEST_CASE("a receive tracker refuses schemas beyond its per-connection limit", "[protocol][service]") {
  schema::recv_tracker receiver;
  // Fresh unit structs S0, S1, …, 512 per payload, until the limit is passed.
  auto batch = [](size_t from, size_t count) {
    schema::schema_payload p;
    for (size_t i = from; i < from + count; ++i) {
      schema::schema s;
      s.kind.kind = schema::schema_kind::tag::struct_;
      s.kind.name = "S"; // not "S" + to_string(i): GCC 12 -O3 warns (-Wrestrict) on that
      s.kind.name += std::to_string(i);
      s.id = schema::content_hash(s.kind, s.type_params);
      p.schemas.push_back(std::move(s));
    }
    p.root.type_id = p.schemas.back().id;
    return schema::encode_schema_payload(p);
  };
  size_t recorded = 0;
  while (recorded + 512 <= schema::recv_tracker::max_schemas) {
    REQUIRE(receiver.record(batch(recorded, 512)));
    recorded += 512;
  }
  CHECK(receiver.size() == schema::recv_tracker::max_schemas);
  auto over = receiver.record(batch(recorded, 1));
  REQUIRE_FALSE(over);
  CHECK(is(over.error(), errc::protocol_violation));
  CHECK(receiver.size() == schema::recv_tracker::max_schemas); // nothing of the refused payload kept
}
