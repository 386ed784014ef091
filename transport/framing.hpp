// Link framing for stream transports: a u32 little-endian length before every payload.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "protocol/bytes.hpp"

namespace vox {

/// Size of the length prefix in front of every payload on a stream transport.
constexpr size_t frame_header_size = 4;

/// The length prefix of a payload of `len` bytes, as it goes on the wire.
std::array<uint8_t, frame_header_size> encode_frame_header(uint32_t len);

/// Appends the length prefix of a payload of `len` bytes to `out`.
void append_frame_header(byte_buffer& out, uint32_t len);

/// Reads a length prefix from the first `frame_header_size` bytes at `p`.
uint32_t decode_frame_header(const uint8_t* p);

/// `errc::frame_too_large` if a frame of `len` bytes exceeds `max_frame_size`, else no error.
/// Every receiver calls this on the length prefix before allocating the payload.
caf::error check_frame_size(uint64_t len, uint32_t max_frame_size);

} // namespace vox
