// The Testbed conformance service (testbed-service.md): its types and its 35 methods.
#pragma once

#include <mutex>
#include <vector>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "actors/channel.hpp"
#include "actors/session_actor.hpp"
#include "protocol/describe.hpp"
#include "protocol/service.hpp"

namespace vox::testbed {

struct point {
  int32_t x = 0, y = 0;
  friend bool operator==(const point&, const point&) = default;
};
VOX_STRUCT(point, "Point", x, y)

struct person {
  std::string name;
  uint8_t age = 0;
  std::optional<std::string> email;
  friend bool operator==(const person&, const person&) = default;
};
VOX_STRUCT(person, "Person", name, age, email)

struct rectangle {
  point top_left, bottom_right;
  std::optional<std::string> label;
  friend bool operator==(const rectangle&, const rectangle&) = default;
};
VOX_STRUCT(rectangle, "Rectangle", top_left, bottom_right, label)

enum class color : uint8_t { red, green, blue };
VOX_ENUM(color, "Color", "Red", "Green", "Blue")

struct circle {
  double radius = 0;
  friend bool operator==(const circle&, const circle&) = default;
};
VOX_STRUCT(circle, "Circle", radius)
struct rect_shape {
  double width = 0, height = 0;
  friend bool operator==(const rect_shape&, const rect_shape&) = default;
};
VOX_STRUCT(rect_shape, "Rectangle", width, height)
struct point_shape {
  friend bool operator==(const point_shape&, const point_shape&) = default;
};

/// Shape { Circle { radius }, Rectangle { width, height }, Point }
struct shape : std::variant<circle, rect_shape, point_shape> {
  using variant::variant;
};
VOX_VARIANT(shape, "Shape", struct_variant("Circle"), struct_variant("Rectangle"), unit_variant("Point"))

struct canvas {
  std::string name;
  std::vector<shape> shapes;
  color background = color::red;
  friend bool operator==(const canvas&, const canvas&) = default;
};
VOX_STRUCT(canvas, "Canvas", name, shapes, background)

/// Message { Text(String), Number(i64), Data(Vec<u8>) }
struct tb_message : std::variant<std::string, int64_t, std::vector<uint8_t>> {
  using variant::variant;
};
VOX_VARIANT(tb_message, "Message", newtype_variant("Text"), newtype_variant("Number"), newtype_variant("Data"))

struct tagged_point {
  std::string label;
  int32_t x = 0, y = 0;
  bool active = false;
  friend bool operator==(const tagged_point&, const tagged_point&) = default;
};
VOX_STRUCT(tagged_point, "TaggedPoint", label, x, y, active)

enum class status : uint8_t { active, inactive };
VOX_ENUM(status, "Status", "Active", "Inactive")

struct tag {
  std::string label;
  uint32_t priority = 0;
  std::string note;
  friend bool operator==(const tag&, const tag&) = default;
};
VOX_STRUCT(tag, "Tag", label, priority, note)

struct profile {
  std::string name, bio;
  friend bool operator==(const profile&, const profile&) = default;
};
VOX_STRUCT(profile, "Profile", name, bio)

struct record {
  int32_t alpha = 0;
  std::string beta;
  double gamma = 0;
  friend bool operator==(const record&, const record&) = default;
};
VOX_STRUCT(record, "Record", alpha, beta, gamma)

struct measurement {
  std::string unit;
  double value = 0;
  friend bool operator==(const measurement&, const measurement&) = default;
};
VOX_STRUCT(measurement, "Measurement", unit, value)

struct config {
  std::string key, value;
  friend bool operator==(const config&, const config&) = default;
};
VOX_STRUCT(config, "Config", key, value)

enum class math_error : uint8_t { division_by_zero, overflow };
VOX_ENUM(math_error, "MathError", "DivisionByZero", "Overflow")

enum class lookup_error : uint8_t { not_found, access_denied };
VOX_ENUM(lookup_error, "LookupError", "NotFound", "AccessDenied")

namespace m {
using echo = method<"echo", std::string(std::string)>;
using reverse = method<"reverse", std::string(std::string)>;
using divide = method<"divide", int64_t(int64_t, int64_t), math_error>;
using lookup = method<"lookup", person(uint32_t), lookup_error>;
using sum = method<"sum", int64_t(rx<int32_t>)>;
using generate = method<"generate", void(uint32_t, tx<int32_t>)>;
using generate_retry_non_idem = method<"generate_retry_non_idem", void(uint32_t, tx<int32_t>)>;
using generate_retry_idem = idem<method<"generate_retry_idem", void(uint32_t, tx<int32_t>)>>;
using transform = method<"transform", void(rx<std::string>, tx<std::string>)>;
using echo_point = method<"echo_point", point(point)>;
using create_person = method<"create_person", person(std::string, uint8_t, std::optional<std::string>)>;
using rectangle_area = method<"rectangle_area", double(rectangle)>;
using parse_color = method<"parse_color", std::optional<color>(std::string)>;
using shape_area = method<"shape_area", double(shape)>;
using create_canvas = method<"create_canvas", canvas(std::string, std::vector<shape>, color)>;
using process_message = method<"process_message", tb_message(tb_message)>;
using get_points = method<"get_points", std::vector<point>(uint32_t)>;
using swap_pair = method<"swap_pair", std::tuple<std::string, int32_t>(std::tuple<int32_t, std::string>)>;
using echo_bytes = method<"echo_bytes", std::vector<uint8_t>(std::vector<uint8_t>)>;
using echo_bool = method<"echo_bool", bool(bool)>;
using echo_u64 = method<"echo_u64", uint64_t(uint64_t)>;
using echo_option_string = method<"echo_option_string", std::optional<std::string>(std::optional<std::string>)>;
using sum_large = method<"sum_large", int64_t(rx<int32_t>)>;
using generate_large = method<"generate_large", void(uint32_t, tx<int32_t>)>;
using all_colors = method<"all_colors", std::vector<color>()>;
using describe_point = method<"describe_point", tagged_point(std::string, int32_t, int32_t, bool)>;
using echo_shape = method<"echo_shape", shape(shape)>;
using echo_status_v1 = method<"echo_status_v1", status(status)>;
using echo_tag_v1 = method<"echo_tag_v1", tag(tag)>;
using echo_profile = method<"echo_profile", profile(profile)>;
using echo_record = method<"echo_record", record(record)>;
using echo_status = method<"echo_status", status(status)>;
using echo_tag = method<"echo_tag", tag(tag)>;
using echo_measurement = method<"echo_measurement", measurement(measurement)>;
using echo_config = method<"echo_config", config(config)>;
} // namespace m

using service_type = service<
  "Testbed", m::echo, m::reverse, m::divide, m::lookup, m::sum, m::generate, m::generate_retry_non_idem,
  m::generate_retry_idem, m::transform, m::echo_point, m::create_person, m::rectangle_area, m::parse_color,
  m::shape_area, m::create_canvas, m::process_message, m::get_points, m::swap_pair, m::echo_bytes,
  m::echo_bool, m::echo_u64, m::echo_option_string, m::sum_large, m::generate_large, m::all_colors,
  m::describe_point, m::echo_shape, m::echo_status_v1, m::echo_tag_v1, m::echo_profile, m::echo_record,
  m::echo_status, m::echo_tag, m::echo_measurement, m::echo_config>;

/// The Testbed handler of testbed-service.md §3, for the root and every virtual connection.
struct item_breaker;
call_handler make_handler(std::shared_ptr<item_breaker> breaker = nullptr);

/// The conformance harness's link breaker (testbed-service.md §4): after the `after`-th
/// item a call of a generate_retry_* method sends, the link it was accepted on is cut,
/// once per method, so that the client has to resume (and retry) to finish.
struct item_breaker {
  explicit item_breaker(uint32_t n) : after(n) {}
  const uint32_t after;
  /// The link to cut: the most recently accepted one (the harness serves one client).
  void accepted(link_ptr lnk);
  /// Item `index` (0-based) of a call of `method` is about to go out.
  void item(method_id_t method, uint32_t index);

private:
  std::mutex mtx_;
  link_ptr latest_;
  std::vector<method_id_t> broken_;
};

/// Session options that serve Testbed on the root and on every virtual connection the peer
/// opens (no keepalive; set `keepalive` and `log` as needed). With a `breaker`, the
/// generate_retry_* methods cut the link as the harness's server does.
session_options serving_options(std::shared_ptr<item_breaker> breaker = nullptr);

} // namespace vox::testbed
