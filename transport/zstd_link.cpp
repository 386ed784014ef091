#include "transport/zstd_link.hpp"

#include <deque>
#include <mutex>
#include <vector>

#include <zstd.h>
#include <zstd_errors.h>

#include "protocol/error.hpp"
#include "transport/handshake_exchange.hpp"

namespace vox {

namespace {

/// Buffers above this are released after use: one large Message must not pin its size
/// for the life of the link.
constexpr size_t keep_buffer_bytes = 256 * 1024;

/// zstd's block header size (ZSTD_blockHeaderSize, which zstd.h only exposes to static
/// linking): what the decoder asks for next at a block boundary.
constexpr size_t block_header_size = 3;
/// The zstd format's Block_Type of a compressed block, and its largest block content.
constexpr uint32_t compressed_block_type = 2;
constexpr size_t max_block_size = 128 * 1024;
/// A record's prefix: a varint of a u32 length and the stripped bit.
constexpr size_t max_record_prefix = 5;

void append_varint(byte_buffer& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

/// The varint at the start of `data` and its size; size 0 while it is unfinished.
caf::expected<std::pair<uint64_t, size_t>> read_varint(byte_span data) {
  uint64_t v = 0;
  for (size_t i = 0; i < std::min(data.size(), max_record_prefix); ++i) {
    v |= uint64_t{data[i] & 0x7fu} << (7 * i);
    if ((data[i] & 0x80) == 0)
      return std::pair{v, i + 1};
  }
  if (data.size() >= max_record_prefix)
    return make_error(errc::compression_failed, "a compressed record's length prefix is longer than 5 bytes");
  return std::pair{uint64_t{0}, size_t{0}};
}

void trim(byte_buffer& buf) {
  if (buf.capacity() > keep_buffer_bytes)
    byte_buffer{}.swap(buf);
}

caf::error zstd_failure(errc code, const char* what, size_t rc) {
  return make_error(code, std::string{what} + ": " + ZSTD_getErrorName(rc));
}

struct cctx_deleter {
  void operator()(ZSTD_CCtx* p) const { ZSTD_freeCCtx(p); }
};

/// Decompresses what a started inner link delivers, for the session's receiver. A chunk
/// that fails ends the input: the stream cannot go on after it, and the session, which
/// owns the link, tears it down (a receiver must not call back into the link that is
/// delivering to it).
class inflating_input final : public link_receiver {
public:
  inflating_input(std::shared_ptr<zstd_record_reader> in, std::shared_ptr<link_receiver> next)
    : in_(std::move(in)), next_(std::move(next)) {}

  void on_frame(byte_span bytes, caf::execution_unit* ctx) override {
    if (ended_)
      return;
    if (auto err = in_->feed(bytes, [&](byte_span payload) { next_->on_frame(payload, ctx); })) {
      ended_ = true;
      next_->on_end(std::move(err), ctx);
    }
  }

  void on_end(caf::error reason, caf::execution_unit* ctx) override {
    if (ended_)
      return;
    ended_ = true;
    if (!reason && in_->partial())
      reason = make_error(errc::compression_failed, "the link ended inside a compressed record");
    next_->on_end(std::move(reason), ctx);
  }

private:
  std::shared_ptr<zstd_record_reader> in_;
  std::shared_ptr<link_receiver> next_;
  bool ended_ = false;
};

} // namespace

void zstd_decoder::dctx_deleter::operator()(ZSTD_DCtx_s* p) const {
  ZSTD_freeDCtx(p);
}

zstd_decoder::zstd_decoder(std::unique_ptr<ZSTD_DCtx_s, dctx_deleter> dctx, uint32_t max_size)
  : dctx_(std::move(dctx)), max_size_(max_size) {}

caf::expected<zstd_decoder> zstd_decoder::make(uint8_t window_log_max, uint32_t max_size) {
  std::unique_ptr<ZSTD_DCtx_s, dctx_deleter> dctx{ZSTD_createDCtx()};
  if (!dctx)
    return make_error(errc::internal, "zstd could not allocate a decompression context");
  if (auto rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, window_log_max); ZSTD_isError(rc))
    return zstd_failure(errc::invalid_request, "zstd refused the window limit", rc);
  return zstd_decoder{std::move(dctx), max_size};
}

// r[impl vox-caf.zstd.limits]
caf::expected<byte_span> zstd_decoder::decode(byte_span chunk) {
  trim(out_);
  // An empty payload flushes nothing after the frame header, so its chunk is empty; zstd
  // itself fails after 16 calls in a row without input (fuzz_zstd_frames found it).
  if (chunk.empty())
    return byte_span{};
  ZSTD_inBuffer in{chunk.data(), chunk.size(), 0};
  size_t produced = 0;
  // One byte beyond the limit: filling it proves the payload is too large.
  const size_t cap = size_t{max_size_} + 1;
  for (;;) {
    if (out_.size() == produced) {
      if (out_.size() == cap)
        return make_error(errc::compression_failed, "a compressed payload expands past the largest accepted ("
                                                      + std::to_string(max_size_)
                                                      + " bytes): refused as a compression bomb");
      // From 4 KiB, doubling: most Messages are small, and every link end keeps its buffer.
      out_.resize(std::min(cap, std::max(out_.size() * 2, produced + 4096)));
    }
    ZSTD_outBuffer out{out_.data(), out_.size(), produced};
    auto rc = ZSTD_decompressStream(dctx_.get(), &out, &in);
    if (ZSTD_isError(rc)) {
      if (ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge)
        return zstd_failure(errc::compression_failed, "the peer's zstd stream declares a window above our limit", rc);
      return zstd_failure(errc::compression_failed, "corrupt zstd stream", rc);
    }
    produced = out.pos;
    // Done when all input is consumed and zstd did not stop for lack of room. A flushed
    // chunk ends on a block boundary, where zstd asks for the next block's header (or for
    // nothing, after a frame's end); any other request means the chunk stopped inside a
    // block or a header, and its bytes would surface as part of a later payload.
    if (in.pos == in.size && out.pos < out.size) {
      if (rc != 0 && rc != block_header_size)
        return make_error(errc::compression_failed,
                          "a compressed chunk ends inside a zstd block or header, not at a flush boundary");
      return byte_span{out_.data(), produced};
    }
  }
}

size_t zstd_decoder::context_bytes() const {
  return ZSTD_sizeof_DCtx(dctx_.get());
}

zstd_record_reader::zstd_record_reader(std::shared_ptr<zstd_decoder> in, uint32_t max_size)
  : in_(std::move(in)), max_record_(ZSTD_compressBound(max_size) + 64) {}

// r[impl vox-caf.zstd.limits]
caf::expected<size_t> zstd_record_reader::take(byte_span data, const std::function<void(byte_span)>& deliver) {
  auto prefix = read_varint(data);
  if (!prefix)
    return std::move(prefix.error());
  auto [v, prefix_size] = *prefix;
  if (prefix_size == 0)
    return size_t{0};
  auto len = v >> 1;
  bool stripped = (v & 1) != 0;
  // Checked before a byte of it is buffered: no honest record is longer.
  if (len > max_record_)
    return make_error(errc::compression_failed, "a compressed record of " + std::to_string(len)
                                                  + " bytes is longer than any payload the link accepts");
  if (stripped && (len == 0 || len > max_block_size))
    return make_error(errc::compression_failed, "a compressed record without its block header holds "
                                                  + std::to_string(len) + " bytes, not one block of 1 to "
                                                  + std::to_string(max_block_size));
  if (data.size() - prefix_size < len)
    return size_t{0};
  auto body = data.subspan(prefix_size, len);
  if (stripped) {
    auto header = static_cast<uint32_t>(len << 3 | compressed_block_type << 1);
    block_.assign({static_cast<uint8_t>(header), static_cast<uint8_t>(header >> 8), static_cast<uint8_t>(header >> 16)});
    block_.insert(block_.end(), body.begin(), body.end());
    body = block_;
  }
  auto out = in_->decode(body);
  trim(block_);
  if (!out)
    return std::move(out.error());
  deliver(*out);
  return prefix_size + len;
}

caf::error zstd_record_reader::feed(byte_span bytes, const std::function<void(byte_span)>& deliver) {
  // An unfinished record first: only the bytes it lacks join it, so a long burst of whole
  // records behind it is decoded in place.
  while (!pending_.empty() && !bytes.empty()) {
    auto prefix = read_varint(pending_);
    if (!prefix)
      return std::move(prefix.error());
    size_t lacking = prefix->second == 0 ? 1 : prefix->second + (prefix->first >> 1) - pending_.size();
    auto n = std::min(lacking, bytes.size());
    pending_.insert(pending_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    bytes = bytes.subspan(n);
    auto took = take(pending_, deliver);
    if (!took)
      return std::move(took.error());
    if (*took > 0) {
      pending_.clear();
      trim(pending_);
    }
  }
  while (!bytes.empty()) {
    auto took = take(bytes, deliver);
    if (!took)
      return std::move(took.error());
    if (*took == 0) {
      pending_.assign(bytes.begin(), bytes.end());
      break;
    }
    bytes = bytes.subspan(*took);
  }
  return {};
}

struct zstd_link::impl {
  link_ptr inner;
  std::mutex send_mtx;
  std::unique_ptr<ZSTD_CCtx, cctx_deleter> cctx;
  bool started_stream = false; ///< the frame header went out with the first record
  byte_buffer chunk;        ///< one payload's zstd output, reused
  byte_buffer out;          ///< the records of one send, reused
  std::vector<size_t> ends; ///< where each record of a send_many ends in `out`
  std::vector<byte_span> chunks; ///< the records of a send_many, views into `out`
  std::shared_ptr<zstd_decoder> in;
  std::shared_ptr<zstd_record_reader> reader; ///< shared by `recv` and the started input
  std::deque<byte_buffer> ready; ///< payloads `recv` decoded and has not returned yet

  /// Appends `payload`'s record to `out`. Flushing ends its output on a block boundary:
  /// the peer decodes all of it from this record alone, with the window kept.
  // r[impl vox-caf.zstd.stream]
  caf::error deflate(byte_span payload) {
    ZSTD_inBuffer in{payload.data(), payload.size(), 0};
    chunk.resize(ZSTD_compressBound(payload.size()) + 32);
    size_t pos = 0;
    for (;;) {
      ZSTD_outBuffer o{chunk.data(), chunk.size(), pos};
      auto rc = ZSTD_compressStream2(cctx.get(), &o, &in, ZSTD_e_flush);
      if (ZSTD_isError(rc))
        return zstd_failure(errc::internal, "zstd compression failed", rc);
      pos = o.pos;
      if (rc == 0)
        break;
      chunk.resize(chunk.size() + ZSTD_CStreamOutSize());
    }
    // A small payload's output is one compressed block: its header is implied by the
    // record's length and goes without it (3 of the ~12 bytes such a record costs).
    bool strip = false;
    if (started_stream && pos > block_header_size) {
      uint32_t h = uint32_t{chunk[0]} | uint32_t{chunk[1]} << 8 | uint32_t{chunk[2]} << 16;
      strip = (h & 1) == 0 && (h >> 1 & 3) == compressed_block_type && (h >> 3) == pos - block_header_size;
    }
    started_stream = true;
    size_t skip = strip ? block_header_size : 0;
    append_varint(out, uint64_t{pos - skip} << 1 | (strip ? 1 : 0));
    out.insert(out.end(), chunk.begin() + static_cast<std::ptrdiff_t>(skip),
               chunk.begin() + static_cast<std::ptrdiff_t>(pos));
    trim(chunk);
    return {};
  }
};

caf::expected<std::shared_ptr<zstd_link>> zstd_link::make(link_ptr inner, const compression_agreement& agreed) {
  auto st = std::make_unique<impl>();
  st->cctx.reset(ZSTD_createCCtx());
  if (!st->cctx)
    return make_error(errc::internal, "zstd could not allocate a compression context");
  // The hash and chain tables follow the level's defaults unless bounded: with a small
  // window they would otherwise be most of the context (hundreds of KiB at level 3). A
  // quarter of the window's entries costs nothing measurable on vox traffic.
  int table_log = std::max(6, agreed.send_window_log - 2);
  for (auto [param, value] : {std::pair{ZSTD_c_compressionLevel, agreed.level},
                              std::pair{ZSTD_c_windowLog, int{agreed.send_window_log}},
                              std::pair{ZSTD_c_hashLog, table_log}, std::pair{ZSTD_c_chainLog, table_log}}) {
    if (auto rc = ZSTD_CCtx_setParameter(st->cctx.get(), param, value); ZSTD_isError(rc))
      return zstd_failure(errc::invalid_request, "zstd refused a compression parameter", rc);
  }
  auto decoder = zstd_decoder::make(agreed.recv_window_log_max, inner->max_frame_size());
  if (!decoder)
    return std::move(decoder.error());
  st->in = std::make_shared<zstd_decoder>(std::move(*decoder));
  st->reader = std::make_shared<zstd_record_reader>(st->in, inner->max_frame_size());
  // r[impl vox-caf.zstd.records]
  // The records frame themselves: on a byte stream, a u32 prefix each would cost more
  // than a small Message's whole record. Other links carry a record per payload.
  (void) inner->enter_stream_mode();
  st->inner = std::move(inner);
  return std::shared_ptr<zstd_link>{new zstd_link(std::move(st))};
}

zstd_link::zstd_link(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

zstd_link::~zstd_link() = default;

caf::expected<void> zstd_link::do_send(byte_span payload, caf::execution_unit* ctx) {
  std::lock_guard<std::mutex> guard{impl_->send_mtx};
  impl_->out.clear();
  if (auto err = impl_->deflate(payload))
    return err;
  auto sent = impl_->inner->send(impl_->out, ctx);
  trim(impl_->out);
  return sent;
}

caf::expected<void> zstd_link::do_send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx) {
  std::lock_guard<std::mutex> guard{impl_->send_mtx};
  auto& st = *impl_;
  st.out.clear();
  st.ends.clear();
  for (auto p : payloads) {
    if (auto err = st.deflate(p))
      return err;
    st.ends.push_back(st.out.size());
  }
  st.chunks.clear();
  size_t begin = 0;
  for (auto end : st.ends) {
    st.chunks.emplace_back(st.out.data() + begin, end - begin);
    begin = end;
  }
  auto sent = st.inner->send_many(st.chunks, ctx);
  trim(st.out);
  return sent;
}

bool zstd_link::congested() const {
  return impl_->inner->congested();
}

void zstd_link::when_drained(std::function<void()> fn) {
  impl_->inner->when_drained(std::move(fn));
}

caf::expected<std::optional<byte_buffer>> zstd_link::recv() {
  auto& st = *impl_;
  while (st.ready.empty()) {
    auto bytes = st.inner->recv();
    if (!bytes)
      return bytes;
    if (!*bytes) {
      if (!st.reader->partial())
        return bytes;
      st.inner->abort();
      return make_error(errc::compression_failed, "the link ended inside a compressed record");
    }
    if (auto err = st.reader->feed(**bytes, [&](byte_span p) { st.ready.emplace_back(p.begin(), p.end()); })) {
      st.inner->abort();
      return err;
    }
  }
  auto out = std::move(st.ready.front());
  st.ready.pop_front();
  return std::optional<byte_buffer>{std::move(out)};
}

void zstd_link::start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) {
  impl_->inner->start(adopt_started(std::move(receiver)), io);
}

std::shared_ptr<link_receiver> zstd_link::adopt_started(std::shared_ptr<link_receiver> session) {
  return std::make_shared<inflating_input>(impl_->reader, std::move(session));
}

void zstd_link::close() {
  impl_->inner->close();
}

void zstd_link::abort() {
  impl_->inner->abort();
}

std::string zstd_link::describe() const {
  return "zstd over " + impl_->inner->describe();
}

link_peer zstd_link::peer() const {
  return impl_->inner->peer();
}

uint32_t zstd_link::max_frame_size() const {
  return impl_->inner->max_frame_size();
}

size_t zstd_link::context_bytes() const {
  std::lock_guard<std::mutex> guard{impl_->send_mtx};
  return ZSTD_sizeof_CCtx(impl_->cctx.get()) + impl_->in->context_bytes();
}

caf::expected<link_ptr> compress_if_agreed(link_ptr lnk, const handshake_result& hs) {
  if (!hs.compression)
    return lnk;
  auto z = zstd_link::make(lnk, *hs.compression);
  if (!z) {
    lnk->abort();
    return std::move(z.error());
  }
  return link_ptr{std::move(*z)};
}

std::shared_ptr<link_receiver> started_input(const link_ptr& session_link, std::shared_ptr<link_receiver> session) {
  if (auto z = std::dynamic_pointer_cast<zstd_link>(session_link))
    return z->adopt_started(std::move(session));
  return session;
}

const char* to_string(compression_mode mode) {
  switch (mode) {
    case compression_mode::off: return "off";
    case compression_mode::prefer: return "prefer";
    case compression_mode::require: return "require";
  }
  return "?";
}

} // namespace vox
