// Link framing for stream transports: a u32 little-endian length before every payload.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

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

/// Splits a byte stream into payloads without doing any I/O (r[transport.stream]).
///
/// Feed it chunks as they arrive, split anywhere, then pop whole payloads. A length prefix
/// above `max_frame_size` fails `feed` with `errc::frame_too_large` before anything is
/// allocated for the payload; the decoder then stays failed, since the stream can no longer
/// be resynchronised.
class frame_decoder {
public:
  /// A decoder that accepts payloads of at most `max_frame_size` bytes.
  explicit frame_decoder(uint32_t max_frame_size);

  /// Consumes all of `chunk`. Fails, now and on every later call, once a length prefix
  /// exceeds the limit.
  caf::expected<void> feed(byte_span chunk);

  /// Removes and returns the oldest complete payload, if any.
  std::optional<byte_buffer> next();

  /// True while bytes of an incomplete frame (header or payload) are buffered. At end of
  /// stream this distinguishes a clean close from one in the middle of a frame.
  bool mid_frame() const noexcept {
    return header_fill_ > 0 || in_body_;
  }

  /// Number of complete payloads waiting in `next`.
  size_t ready() const noexcept {
    return ready_.size();
  }

private:
  uint32_t max_frame_size_;
  std::array<uint8_t, frame_header_size> header_{};
  size_t header_fill_ = 0;
  bool in_body_ = false;
  uint32_t body_size_ = 0;
  byte_buffer body_;
  std::deque<byte_buffer> ready_;
  caf::error failure_;
};

} // namespace vox
