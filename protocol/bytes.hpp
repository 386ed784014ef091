// Byte containers shared by every layer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vox {

/// An owned, growable run of bytes (an encoded message, a link frame).
using byte_buffer = std::vector<uint8_t>;

/// A read-only view of bytes owned elsewhere.
using byte_span = std::span<const uint8_t>;

/// A byte string that the schema calls the `bytes` primitive (Rust `&[u8]`, `bytes::Bytes`).
/// Encodes like `std::vector<uint8_t>`; it differs only in the schema it produces.
struct bytes : std::vector<uint8_t> {
  using std::vector<uint8_t>::vector;
  bytes() = default;
  explicit bytes(std::vector<uint8_t> v) : std::vector<uint8_t>(std::move(v)) {}
};

/// vox's opaque payload: bytes that are themselves postcard, framed on the wire by a
/// u32 little-endian length instead of a varint (schema primitive `payload`).
struct payload : std::vector<uint8_t> {
  using std::vector<uint8_t>::vector;
  payload() = default;
  explicit payload(std::vector<uint8_t> v) : std::vector<uint8_t>(std::move(v)) {}
};

/// Lower-case hex of `data`, e.g. "00ff10".
std::string to_hex(byte_span data);

/// Parses hex (upper or lower case, no separators); an empty result on malformed input.
byte_buffer from_hex(std::string_view hex);

} // namespace vox
