// The CBOR subset vox speaks in the handshake and in schemas (RFC 8949; wire-format.md §5.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "protocol/bytes.hpp"

namespace vox {

/// Kind of the next CBOR data item, as seen from its initial byte.
enum class cbor_type : uint8_t {
  unsigned_int, ///< major 0
  negative_int, ///< major 1
  byte_string,  ///< major 2
  text_string,  ///< major 3
  array,        ///< major 4
  map,          ///< major 5
  tag,          ///< major 6; vox never uses tags and the reader rejects them
  boolean,      ///< f4 / f5
  null,         ///< f6
  simple,       ///< any other simple value (undefined, unassigned)
  floating,     ///< half, single or double float
};

/// Printable name of a `cbor_type`, e.g. "text string".
const char* to_string(cbor_type type);

/// Appends CBOR items to a buffer: definite lengths, shortest-form heads (RFC 8949 §4.2.1),
/// as facet-cbor writes them. The writer only produces heads; callers keep counts right.
class cbor_writer {
public:
  /// Writes into `out`, which must outlive the writer; existing content is kept.
  explicit cbor_writer(byte_buffer& out) : out_(out) {}

  /// Major 0.
  void write_uint(uint64_t value);
  /// Major 0 for non-negative values, major 1 otherwise.
  void write_int(int64_t value);
  /// Major 3; `text` must be UTF-8 (not checked).
  void write_text(std::string_view text);
  /// Major 2.
  void write_bytes(byte_span data);
  /// Head of an array of `count` items; the items follow.
  void write_array_header(uint64_t count);
  /// Head of a map of `count` key/value pairs; the pairs follow.
  void write_map_header(uint64_t count);
  /// f4 / f5.
  void write_bool(bool value);
  /// f6.
  void write_null();
  /// Copies one already-encoded item (or several) verbatim.
  void write_raw(byte_span encoded);

  /// The buffer written to.
  byte_buffer& buffer() { return out_; }

private:
  void write_head(uint8_t major, uint64_t argument);

  byte_buffer& out_;
};

/// Pull parser over a CBOR byte sequence that never trusts its input.
///
/// Every read either consumes one item (or one container head) and returns its value, or
/// fails with `errc::cbor_malformed` and leaves the position unchanged. Lengths are checked
/// against the remaining input before anything is allocated or viewed; indefinite lengths,
/// tags and reserved additional-information values are rejected. Error messages name the
/// absolute byte offset (`base_offset` + position) of the offending item.
class cbor_reader {
public:
  /// Nesting accepted by `skip_item` / `raw_item` unless told otherwise.
  static constexpr size_t default_max_depth = 64;

  /// Reads `input`. `base_offset` is added to positions in error messages, for readers
  /// over a slice of a larger buffer.
  explicit cbor_reader(byte_span input, size_t base_offset = 0,
                       size_t max_depth = default_max_depth)
    : input_(input), base_(base_offset), max_depth_(max_depth) {}

  /// Offset of the next unread byte, relative to the input given to the constructor.
  size_t position() const { return pos_; }
  /// `position()` plus the base offset: what error messages report.
  size_t absolute_position() const { return base_ + pos_; }
  /// Bytes not read yet.
  size_t remaining() const { return input_.size() - pos_; }
  /// True when all input is consumed.
  bool at_end() const { return pos_ == input_.size(); }

  /// Type of the next item without consuming it; fails at end of input.
  caf::expected<cbor_type> peek_type() const;

  /// An unsigned integer (major 0).
  caf::expected<uint64_t> read_uint();
  /// A major 0 or major 1 integer that fits `int64_t`.
  caf::expected<int64_t> read_int();
  /// A text string, validated as UTF-8, copied.
  caf::expected<std::string> read_text();
  /// A text string, validated as UTF-8, viewed in place (valid as long as the input).
  caf::expected<std::string_view> read_text_view();
  /// A byte string, copied.
  caf::expected<byte_buffer> read_bytes();
  /// A byte string, viewed in place.
  caf::expected<byte_span> read_bytes_view();
  /// f4 / f5.
  caf::expected<bool> read_bool();
  /// f6.
  caf::expected<void> read_null();
  /// Consumes f6 and returns true if the next item is null; false (nothing consumed) otherwise.
  bool try_read_null();
  /// Head of an array; returns the item count, which is at most `remaining()`.
  caf::expected<uint64_t> read_array_header();
  /// Head of a map; returns the pair count, which is at most `remaining() / 2`.
  caf::expected<uint64_t> read_map_header();

  /// Skips the next complete item, containers included. Nesting deeper than `max_depth`
  /// fails. Iterative: a nesting bomb costs no stack.
  caf::expected<void> skip_item();
  /// Skips the next complete item (as `skip_item`) and returns its encoded bytes.
  caf::expected<byte_span> raw_item();

  /// An `errc::cbor_malformed` error that names the current absolute offset.
  caf::error error_here(std::string what) const { return error_at(pos_, std::move(what)); }
  /// An `errc::cbor_malformed` error that names `base_offset + at`.
  caf::error error_at(size_t at, std::string what) const;

private:
  struct head {
    uint8_t major;
    uint8_t info;      ///< additional information (low five bits)
    uint64_t argument; ///< value, length or count; for major 7 the simple value / float bits
    size_t size;       ///< bytes taken by the head itself
  };

  /// Decodes the head at `pos_` without consuming it.
  caf::expected<head> peek_head() const;
  /// Decodes the head at `pos_`, checks its major type, and consumes it.
  caf::expected<head> take_head(uint8_t major, const char* expected);
  /// Consumes a string head of `major` and views its payload.
  caf::expected<byte_span> take_string(uint8_t major, const char* expected);

  byte_span input_;
  size_t pos_ = 0;
  size_t base_;
  size_t max_depth_;
};

/// A CBOR map with text keys, read in one pass with each value kept as its encoded bytes,
/// so that values can be looked up by name whatever order the peer wrote the keys in
/// (facet-cbor's decoders find fields by name and skip unknown keys).
class cbor_map {
public:
  /// One key with its value still encoded.
  struct entry {
    std::string_view key; ///< views the input
    byte_span value;      ///< exactly one encoded item
    size_t offset;        ///< absolute offset of `value`, for error messages
    /// A reader positioned on the value, reporting absolute offsets.
    cbor_reader reader() const { return cbor_reader{value, offset}; }
  };

  /// Reads the map at `r`'s position; `what` names it in error messages ("Hello").
  /// Non-text keys, malformed values and nesting beyond the reader's limit fail.
  static caf::expected<cbor_map> read(cbor_reader& r, std::string what);

  /// The entry for `key`; nullptr when absent; an error when `key` appears twice.
  caf::expected<const entry*> find(std::string_view key) const;
  /// The entry for `key`; an error when it is absent or appears twice.
  caf::expected<const entry*> require(std::string_view key) const;

  /// The value under `key`, parsed by `read(cbor_reader&) -> caf::expected<T>`; an error
  /// when the key is absent or duplicated or `read` fails.
  template <class T, class Read>
  caf::expected<T> get(std::string_view key, Read&& read) const {
    auto e = require(key);
    if (!e)
      return std::move(e.error());
    auto r = (*e)->reader();
    return read(r);
  }

  /// Like `get`, but `fallback` when the key is absent (a `#[facet(default)]` field).
  template <class T, class Read>
  caf::expected<T> get_or(std::string_view key, T fallback, Read&& read) const {
    auto e = find(key);
    if (!e)
      return std::move(e.error());
    if (*e == nullptr)
      return fallback;
    auto r = (*e)->reader();
    return read(r);
  }

  /// An `errc::cbor_malformed` error at absolute offset `at` (e.g. an entry's `offset`).
  caf::error fail(size_t at, std::string what) const;

  /// Absolute offset of the map's head.
  size_t offset() const { return offset_; }
  /// All entries in input order.
  const std::vector<entry>& entries() const { return entries_; }

private:
  std::string what_;
  size_t offset_ = 0;
  std::vector<entry> entries_;
};

/// Checks that `cbor` holds exactly one well-formed item no deeper than
/// `cbor_reader::default_max_depth`, with nothing after it.
caf::expected<void> check_single_item(byte_span cbor);

} // namespace vox
