#include "protocol/cbor.hpp"

#include <limits>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/postcard.hpp"

namespace vox {

namespace {

constexpr uint8_t major_uint = 0;
constexpr uint8_t major_nint = 1;
constexpr uint8_t major_bytes = 2;
constexpr uint8_t major_text = 3;
constexpr uint8_t major_array = 4;
constexpr uint8_t major_map = 5;
constexpr uint8_t major_tag = 6;
constexpr uint8_t major_simple = 7;

constexpr uint8_t simple_false = 20;
constexpr uint8_t simple_true = 21;
constexpr uint8_t simple_null = 22;

cbor_type type_of(uint8_t major, uint8_t info) {
  switch (major) {
    case major_uint: return cbor_type::unsigned_int;
    case major_nint: return cbor_type::negative_int;
    case major_bytes: return cbor_type::byte_string;
    case major_text: return cbor_type::text_string;
    case major_array: return cbor_type::array;
    case major_map: return cbor_type::map;
    case major_tag: return cbor_type::tag;
    default: break;
  }
  if (info == simple_false || info == simple_true)
    return cbor_type::boolean;
  if (info == simple_null)
    return cbor_type::null;
  if (info >= 25 && info <= 27)
    return cbor_type::floating;
  return cbor_type::simple;
}

} // namespace

const char* to_string(cbor_type type) {
  switch (type) {
    case cbor_type::unsigned_int: return "unsigned integer";
    case cbor_type::negative_int: return "negative integer";
    case cbor_type::byte_string: return "byte string";
    case cbor_type::text_string: return "text string";
    case cbor_type::array: return "array";
    case cbor_type::map: return "map";
    case cbor_type::tag: return "tag";
    case cbor_type::boolean: return "boolean";
    case cbor_type::null: return "null";
    case cbor_type::simple: return "simple value";
    case cbor_type::floating: return "float";
  }
  return "unknown";
}

// -- writer -------------------------------------------------------------------

void cbor_writer::write_head(uint8_t major, uint64_t argument) {
  auto initial = static_cast<uint8_t>(major << 5);
  auto put_be = [this](uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  if (argument < 24) {
    out_.push_back(static_cast<uint8_t>(initial | argument));
  } else if (argument <= 0xff) {
    out_.push_back(initial | 24);
    put_be(argument, 1);
  } else if (argument <= 0xffff) {
    out_.push_back(initial | 25);
    put_be(argument, 2);
  } else if (argument <= 0xffffffff) {
    out_.push_back(initial | 26);
    put_be(argument, 4);
  } else {
    out_.push_back(initial | 27);
    put_be(argument, 8);
  }
}

void cbor_writer::write_uint(uint64_t value) {
  write_head(major_uint, value);
}

void cbor_writer::write_int(int64_t value) {
  if (value >= 0)
    write_head(major_uint, static_cast<uint64_t>(value));
  else // -1 - value, computed without overflowing at INT64_MIN
    write_head(major_nint, ~static_cast<uint64_t>(value));
}

void cbor_writer::write_text(std::string_view text) {
  write_head(major_text, text.size());
  out_.insert(out_.end(), text.begin(), text.end());
}

void cbor_writer::write_bytes(byte_span data) {
  write_head(major_bytes, data.size());
  out_.insert(out_.end(), data.begin(), data.end());
}

void cbor_writer::write_array_header(uint64_t count) {
  write_head(major_array, count);
}

void cbor_writer::write_map_header(uint64_t count) {
  write_head(major_map, count);
}

void cbor_writer::write_bool(bool value) {
  out_.push_back(value ? 0xf5 : 0xf4);
}

void cbor_writer::write_null() {
  out_.push_back(0xf6);
}

void cbor_writer::write_raw(byte_span encoded) {
  out_.insert(out_.end(), encoded.begin(), encoded.end());
}

// -- reader -------------------------------------------------------------------

caf::error cbor_reader::error_at(size_t at, std::string what) const {
  return make_error(errc::cbor_malformed,
                    "CBOR at byte " + std::to_string(base_ + at) + ": " + what);
}

caf::expected<cbor_reader::head> cbor_reader::peek_head() const {
  if (at_end())
    return error_here("unexpected end of input");
  uint8_t initial = input_[pos_];
  head h{static_cast<uint8_t>(initial >> 5), static_cast<uint8_t>(initial & 0x1f), 0, 1};
  if (h.info < 24) {
    h.argument = h.info;
    return h;
  }
  if (h.info <= 27) {
    size_t n = size_t{1} << (h.info - 24);
    if (remaining() - 1 < n)
      return error_here("head needs " + std::to_string(n) + " argument bytes, input ends");
    for (size_t i = 0; i < n; ++i)
      h.argument = (h.argument << 8) | input_[pos_ + 1 + i];
    h.size = 1 + n;
    return h;
  }
  if (h.info == 31) {
    if (h.major == major_simple)
      return error_here("unexpected break code");
    return error_here("indefinite lengths are not allowed");
  }
  return error_here("reserved additional information " + std::to_string(h.info));
}

caf::expected<cbor_reader::head> cbor_reader::take_head(uint8_t major, const char* expected) {
  auto h = peek_head();
  if (!h)
    return std::move(h.error());
  if (h->major != major)
    return error_here(std::string{"expected "} + expected + ", found "
                      + to_string(type_of(h->major, h->info)));
  pos_ += h->size;
  return h;
}

caf::expected<cbor_type> cbor_reader::peek_type() const {
  auto h = peek_head();
  if (!h)
    return std::move(h.error());
  return type_of(h->major, h->info);
}

caf::expected<uint64_t> cbor_reader::read_uint() {
  auto h = take_head(major_uint, "unsigned integer");
  if (!h)
    return std::move(h.error());
  return h->argument;
}

caf::expected<int64_t> cbor_reader::read_int() {
  auto h = peek_head();
  if (!h)
    return std::move(h.error());
  constexpr auto max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (h->major == major_uint || h->major == major_nint) {
    if (h->argument > max)
      return error_here("integer does not fit int64");
    pos_ += h->size;
    auto v = static_cast<int64_t>(h->argument);
    return h->major == major_uint ? v : -1 - v;
  }
  return error_here(std::string{"expected integer, found "}
                    + to_string(type_of(h->major, h->info)));
}

caf::expected<byte_span> cbor_reader::take_string(uint8_t major, const char* expected) {
  auto start = pos_;
  auto h = take_head(major, expected);
  if (!h)
    return std::move(h.error());
  if (h->argument > remaining()) {
    auto err = error_at(start, std::string{expected} + " declares "
                                 + std::to_string(h->argument) + " bytes, only "
                                 + std::to_string(remaining()) + " remain");
    pos_ = start;
    return err;
  }
  auto data = input_.subspan(pos_, static_cast<size_t>(h->argument));
  pos_ += data.size();
  return data;
}

caf::expected<std::string_view> cbor_reader::read_text_view() {
  auto start = pos_;
  auto data = take_string(major_text, "text string");
  if (!data)
    return std::move(data.error());
  std::string_view text{reinterpret_cast<const char*>(data->data()), data->size()};
  if (!postcard::valid_utf8(text)) {
    pos_ = start;
    return error_here("text string is not valid UTF-8");
  }
  return text;
}

caf::expected<std::string> cbor_reader::read_text() {
  auto view = read_text_view();
  if (!view)
    return std::move(view.error());
  return std::string{*view};
}

caf::expected<byte_span> cbor_reader::read_bytes_view() {
  return take_string(major_bytes, "byte string");
}

caf::expected<byte_buffer> cbor_reader::read_bytes() {
  auto view = read_bytes_view();
  if (!view)
    return std::move(view.error());
  return byte_buffer(view->begin(), view->end());
}

caf::expected<bool> cbor_reader::read_bool() {
  auto h = peek_head();
  if (!h)
    return std::move(h.error());
  if (h->major != major_simple || (h->info != simple_false && h->info != simple_true))
    return error_here(std::string{"expected boolean, found "}
                      + to_string(type_of(h->major, h->info)));
  pos_ += h->size;
  return h->info == simple_true;
}

caf::expected<void> cbor_reader::read_null() {
  if (try_read_null())
    return {};
  auto type = peek_type();
  if (!type)
    return std::move(type.error());
  return error_here(std::string{"expected null, found "} + to_string(*type));
}

bool cbor_reader::try_read_null() {
  if (at_end() || input_[pos_] != 0xf6)
    return false;
  ++pos_;
  return true;
}

caf::expected<uint64_t> cbor_reader::read_array_header() {
  auto start = pos_;
  auto h = take_head(major_array, "array");
  if (!h)
    return std::move(h.error());
  // Every item takes at least one byte: a larger count cannot be honest.
  if (h->argument > remaining()) {
    auto err = error_at(start, "array declares " + std::to_string(h->argument)
                                 + " items, only " + std::to_string(remaining())
                                 + " bytes remain");
    pos_ = start;
    return err;
  }
  return h->argument;
}

caf::expected<uint64_t> cbor_reader::read_map_header() {
  auto start = pos_;
  auto h = take_head(major_map, "map");
  if (!h)
    return std::move(h.error());
  if (h->argument > remaining() / 2) {
    auto err = error_at(start, "map declares " + std::to_string(h->argument)
                                 + " entries, only " + std::to_string(remaining())
                                 + " bytes remain");
    pos_ = start;
    return err;
  }
  return h->argument;
}

caf::expected<void> cbor_reader::skip_item() {
  auto start = pos_;
  auto fail = [&](caf::error err) {
    pos_ = start;
    return err;
  };
  // Items still to skip in each open container, innermost last; `left` is the innermost.
  std::vector<uint64_t> open;
  uint64_t left = 1;
  for (;;) {
    if (left == 0) {
      if (open.empty())
        return {};
      left = open.back();
      open.pop_back();
      continue;
    }
    auto h = peek_head();
    if (!h)
      return fail(std::move(h.error()));
    --left;
    auto item_at = pos_;
    pos_ += h->size;
    switch (h->major) {
      case major_bytes:
      case major_text:
        if (h->argument > remaining())
          return fail(error_at(item_at, "string declares " + std::to_string(h->argument)
                                          + " bytes, only " + std::to_string(remaining())
                                          + " remain"));
        pos_ += static_cast<size_t>(h->argument);
        break;
      case major_array:
      case major_map: {
        bool is_map = h->major == major_map;
        if (h->argument > (is_map ? remaining() / 2 : remaining()))
          return fail(error_at(item_at, std::string{is_map ? "map" : "array"} + " declares "
                                          + std::to_string(h->argument)
                                          + " entries, only " + std::to_string(remaining())
                                          + " bytes remain"));
        if (open.size() + 1 > max_depth_)
          return fail(error_at(item_at, "nesting deeper than " + std::to_string(max_depth_)));
        if (h->argument > 0) {
          open.push_back(left);
          left = is_map ? h->argument * 2 : h->argument;
        }
        break;
      }
      case major_tag:
        return fail(error_at(item_at, "tags are not used by vox"));
      default: // integers and simple values/floats are complete after their head
        break;
    }
  }
}

caf::expected<byte_span> cbor_reader::raw_item() {
  auto start = pos_;
  if (auto ok = skip_item(); !ok)
    return std::move(ok.error());
  return input_.subspan(start, pos_ - start);
}

// -- map view -----------------------------------------------------------------

caf::expected<cbor_map> cbor_map::read(cbor_reader& r, std::string what) {
  cbor_map m;
  m.what_ = std::move(what);
  m.offset_ = r.absolute_position();
  auto n = r.read_map_header();
  if (!n)
    return std::move(n.error());
  // The count was bounded by the remaining input, so this reservation is too.
  m.entries_.reserve(static_cast<size_t>(*n));
  for (uint64_t i = 0; i < *n; ++i) {
    auto key = r.read_text_view();
    if (!key)
      return std::move(key.error());
    auto at = r.absolute_position();
    auto value = r.raw_item();
    if (!value)
      return std::move(value.error());
    m.entries_.push_back(entry{*key, *value, at});
  }
  return m;
}

caf::expected<const cbor_map::entry*> cbor_map::find(std::string_view key) const {
  const entry* found = nullptr;
  for (const auto& e : entries_) {
    if (e.key != key)
      continue;
    if (found) // which one a peer meant is ambiguous: refuse rather than guess
      return fail(e.offset, "duplicate key \"" + std::string{key} + "\" in " + what_);
    found = &e;
  }
  return found;
}

caf::expected<const cbor_map::entry*> cbor_map::require(std::string_view key) const {
  auto e = find(key);
  if (e && *e == nullptr)
    return fail(offset_, "missing key \"" + std::string{key} + "\" in " + what_);
  return e;
}

caf::error cbor_map::fail(size_t at, std::string what) const {
  return make_error(errc::cbor_malformed, "CBOR at byte " + std::to_string(at) + ": " + what);
}

caf::expected<void> check_single_item(byte_span cbor) {
  cbor_reader r{cbor};
  if (auto ok = r.skip_item(); !ok)
    return ok;
  if (!r.at_end())
    return r.error_here("trailing bytes after the top-level item");
  return {};
}

} // namespace vox
