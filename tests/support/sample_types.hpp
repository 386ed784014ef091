// The test types of the reference's composite golden vectors (vectors/README.md).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "protocol/codec.hpp"
#include "protocol/describe.hpp"

namespace vox::test {

struct point {
  int32_t x = 0;
  int32_t y = 0;
  friend bool operator==(const point&, const point&) = default;
};
VOX_STRUCT(point, "Point", x, y)

struct nested {
  std::string name;
  test::point point;
  std::vector<std::string> tags;
  friend bool operator==(const nested&, const nested&) = default;
};
VOX_STRUCT(nested, "Nested", name, point, tags)

enum class color : uint8_t { red, green, blue };
VOX_ENUM(color, "Color", "Red", "Green", "Blue")

struct rect {
  double w = 0;
  double h = 0;
  friend bool operator==(const rect&, const rect&) = default;
};
VOX_STRUCT(rect, "Rect", w, h)

/// Shape { Circle(f64), Rect { w, h }, Empty }
struct shape : std::variant<double, rect, unit> {
  using variant::variant;
};
VOX_VARIANT(shape, "Shape", newtype_variant("Circle"), struct_variant("Rect"),
            unit_variant("Empty"))

} // namespace vox::test
