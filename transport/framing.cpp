#include "transport/framing.hpp"

#include <algorithm>
#include <string>

#include "protocol/error.hpp"

namespace vox {

std::array<uint8_t, frame_header_size> encode_frame_header(uint32_t len) {
  return {static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
          static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 24)};
}

// r[impl transport.stream]
void append_frame_header(byte_buffer& out, uint32_t len) {
  auto header = encode_frame_header(len);
  out.insert(out.end(), header.begin(), header.end());
}

uint32_t decode_frame_header(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8)
         | (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

caf::error check_frame_size(uint64_t len, uint32_t max_frame_size) {
  if (len <= max_frame_size)
    return {};
  return make_error(errc::frame_too_large, "frame of " + std::to_string(len)
                                             + " bytes exceeds the "
                                             + std::to_string(max_frame_size) + "-byte limit");
}

} // namespace vox
