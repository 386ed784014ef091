// Postcard primitives (wire-format.md §3.1): varints, zigzag, fixed-width and
// length-prefixed fields. Typed encoding of whole values lives in codec.hpp.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <caf/error.hpp>

#include "protocol/bytes.hpp"
#include "protocol/error.hpp"

namespace vox::postcard {

/// Appends postcard primitives to a buffer. Output is canonical: minimal varints.
class writer {
public:
  explicit writer(byte_buffer& out) : out_(out) {}

  /// Bytes written so far (where the next value starts).
  size_t size() const { return out_.size(); }

  void u8(uint8_t v) { out_.push_back(v); }

  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<uint8_t>(v) | 0x80);
      v >>= 7;
    }
    out_.push_back(static_cast<uint8_t>(v));
  }

  void zigzag(int64_t v) {
    varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }

  void fixed_u32(uint32_t v) {
    uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
    raw(b, 4);
  }

  void fixed_u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }

  /// varint length + raw bytes (String, Vec<u8>, bytes).
  void length_prefixed(const void* data, size_t n) {
    varint(n);
    raw(data, n);
  }

  /// The opaque vox Payload: u32 little-endian length + raw bytes (§3.2.1).
  void opaque(const void* data, size_t n) {
    fixed_u32(static_cast<uint32_t>(n));
    raw(data, n);
  }

  void raw(const void* data, size_t n) {
    auto p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + n);
  }

  byte_buffer& buffer() { return out_; }

private:
  byte_buffer& out_;
};

/// Limits a reader applies to peer-supplied counts.
struct read_limits {
  /// Maximum element count of a sequence whose elements may encode to zero bytes
  /// (e.g. `Vec<()>`); other sequences are bounded by the remaining input instead.
  uint64_t max_zero_size_elements = 1u << 20;
  /// Maximum nesting of containers/enums while decoding.
  uint32_t max_depth = 128;
};

/// Reads postcard primitives from a byte span. The first failure is sticky: every
/// later read fails too and `error()` reports the first one with its byte offset.
/// Reads never go past the end and never allocate on the peer's say-so.
class reader {
public:
  explicit reader(byte_span data, read_limits limits = {}) : data_(data), limits_(limits) {}

  bool ok() const { return !err_; }
  const caf::error& error() const { return err_; }
  caf::error take_error() { return std::move(err_); }
  size_t position() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  const read_limits& limits() const { return limits_; }

  /// Records the first failure, naming the offset where it happened.
  bool fail(errc code, std::string what) {
    if (!err_)
      err_ = make_error(code, std::move(what) + " at byte " + std::to_string(pos_));
    return false;
  }

  bool u8(uint8_t& v) {
    if (!need(1, "u8"))
      return false;
    v = data_[pos_++];
    return true;
  }

  /// LEB128 of at most 10 bytes, as the reference reads every integer (lenient about
  /// overlong forms, strict about overflow past 64 bits).
  bool varint(uint64_t& v) {
    if (!ok())
      return false;
    uint64_t result = 0;
    for (int i = 0; i < 10; ++i) {
      if (pos_ >= data_.size())
        return fail(errc::truncated, "input ended inside a varint");
      uint8_t b = data_[pos_++];
      if (i == 9 && b > 1)
        return fail(errc::varint_overflow, "varint exceeds 64 bits");
      result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        v = result;
        return true;
      }
    }
    return fail(errc::varint_overflow, "varint longer than 10 bytes");
  }

  /// A varint that must fit `Max` (the reference truncates; we reject, since a value
  /// that does not fit cannot have come from a correct encoder).
  template <class T>
  bool varint_as(T& v) {
    uint64_t x = 0;
    if (!varint(x))
      return false;
    if (x > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return fail(errc::invalid_value, "integer " + std::to_string(x) + " out of range");
    v = static_cast<T>(x);
    return true;
  }

  template <class T>
  bool zigzag_as(T& v) {
    uint64_t u = 0;
    if (!varint(u))
      return false;
    int64_t x = static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
    if (x < static_cast<int64_t>(std::numeric_limits<T>::min())
        || x > static_cast<int64_t>(std::numeric_limits<T>::max()))
      return fail(errc::invalid_value, "integer " + std::to_string(x) + " out of range");
    v = static_cast<T>(x);
    return true;
  }

  bool fixed_u32(uint32_t& v) {
    if (!need(4, "u32"))
      return false;
    v = uint32_t(data_[pos_]) | uint32_t(data_[pos_ + 1]) << 8 | uint32_t(data_[pos_ + 2]) << 16
        | uint32_t(data_[pos_ + 3]) << 24;
    pos_ += 4;
    return true;
  }

  bool fixed_u64(uint64_t& v) {
    if (!need(8, "u64"))
      return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v |= uint64_t(data_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return true;
  }

  /// A varint length, checked against the remaining input, then a view of that many bytes.
  bool length_prefixed(byte_span& out, const char* what) {
    uint64_t n = 0;
    if (!varint(n))
      return false;
    return take(n, out, what);
  }

  /// The opaque Payload: u32-LE length, checked against the remaining input.
  bool opaque(byte_span& out) {
    uint32_t n = 0;
    if (!fixed_u32(n))
      return false;
    return take(n, out, "payload");
  }

  /// An element count for a sequence whose elements take at least `min_element_size`
  /// bytes each; a count that cannot fit in the remaining input fails up front.
  bool count(uint64_t& n, size_t min_element_size, const char* what) {
    if (!varint(n))
      return false;
    if (min_element_size == 0 ? n > limits_.max_zero_size_elements
                              : n > remaining() / min_element_size)
      return fail(errc::length_limit, std::string{what} + " count " + std::to_string(n)
                                        + " exceeds what the input can hold");
    return true;
  }

  bool enter() {
    if (++depth_ > limits_.max_depth)
      return fail(errc::length_limit, "nesting deeper than " + std::to_string(limits_.max_depth));
    return true;
  }
  void leave() { --depth_; }

private:
  bool need(size_t n, const char* what) {
    if (!ok())
      return false;
    if (remaining() < n)
      return fail(errc::truncated, std::string{"input ended inside "} + what);
    return true;
  }

  bool take(uint64_t n, byte_span& out, const char* what) {
    if (!ok())
      return false;
    if (n > remaining())
      return fail(errc::truncated, std::string{what} + " length " + std::to_string(n)
                                     + " runs past the end (" + std::to_string(remaining())
                                     + " bytes left)");
    out = data_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return true;
  }

  byte_span data_;
  size_t pos_ = 0;
  uint32_t depth_ = 0;
  read_limits limits_;
  caf::error err_;
};

/// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s);

} // namespace vox::postcard
