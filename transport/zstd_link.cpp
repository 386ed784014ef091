#include "transport/zstd_link.hpp"

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
  inflating_input(std::shared_ptr<zstd_decoder> in, std::shared_ptr<link_receiver> next)
    : in_(std::move(in)), next_(std::move(next)) {}

  void on_frame(byte_span payload, caf::execution_unit* ctx) override {
    if (ended_)
      return;
    auto out = in_->decode(payload);
    if (!out) {
      ended_ = true;
      next_->on_end(std::move(out.error()), ctx);
      return;
    }
    next_->on_frame(*out, ctx);
  }

  void on_end(caf::error reason, caf::execution_unit* ctx) override {
    if (!ended_) {
      ended_ = true;
      next_->on_end(std::move(reason), ctx);
    }
  }

private:
  std::shared_ptr<zstd_decoder> in_;
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

struct zstd_link::impl {
  link_ptr inner;
  std::mutex send_mtx;
  std::unique_ptr<ZSTD_CCtx, cctx_deleter> cctx;
  byte_buffer out;          ///< compressed chunks of one send, reused
  std::vector<size_t> ends; ///< where each chunk of a send_many ends in `out`
  std::vector<byte_span> chunks; ///< the chunks of a send_many, views into `out`
  std::shared_ptr<zstd_decoder> in;

  /// Appends `payload`'s compressed chunk to `out`. Flushing ends the chunk on a block
  /// boundary: the peer decodes all of it from this chunk alone, with the window kept.
  // r[impl vox-caf.zstd.stream]
  caf::error deflate(byte_span payload) {
    ZSTD_inBuffer in{payload.data(), payload.size(), 0};
    auto start = out.size();
    out.resize(start + ZSTD_compressBound(payload.size()) + 32);
    size_t pos = start;
    for (;;) {
      ZSTD_outBuffer o{out.data(), out.size(), pos};
      auto rc = ZSTD_compressStream2(cctx.get(), &o, &in, ZSTD_e_flush);
      if (ZSTD_isError(rc)) {
        out.resize(start);
        return zstd_failure(errc::internal, "zstd compression failed", rc);
      }
      pos = o.pos;
      if (rc == 0)
        break;
      out.resize(out.size() + ZSTD_CStreamOutSize());
    }
    out.resize(pos);
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
  st->inner = std::move(inner);
  return std::shared_ptr<zstd_link>{new zstd_link(std::move(st))};
}

zstd_link::zstd_link(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

zstd_link::~zstd_link() = default;

caf::expected<void> zstd_link::send(byte_span payload) {
  std::lock_guard<std::mutex> guard{impl_->send_mtx};
  impl_->out.clear();
  if (auto err = impl_->deflate(payload))
    return err;
  auto sent = impl_->inner->send(impl_->out);
  trim(impl_->out);
  return sent;
}

caf::expected<void> zstd_link::send_many(std::span<const byte_span> payloads) {
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
  auto sent = st.inner->send_many(st.chunks);
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
  auto chunk = impl_->inner->recv();
  if (!chunk || !*chunk)
    return chunk;
  auto out = impl_->in->decode(**chunk);
  if (!out) {
    impl_->inner->abort();
    return std::move(out.error());
  }
  return std::optional<byte_buffer>{byte_buffer(out->begin(), out->end())};
}

void zstd_link::start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) {
  impl_->inner->start(adopt_started(std::move(receiver)), io);
}

std::shared_ptr<link_receiver> zstd_link::adopt_started(std::shared_ptr<link_receiver> session) {
  return std::make_shared<inflating_input>(impl_->in, std::move(session));
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
