// A link that compresses every payload with zstd over another link (README "Compressed
// links"): one stream per direction, each payload flushed so that the peer decodes it at
// once, the window shared across payloads.
#pragma once

#include <functional>
#include <memory>

#include "transport/compression.hpp"
#include "transport/link.hpp"

struct ZSTD_DCtx_s;

namespace vox {

struct handshake_result;

/// One direction's decompressor: each chunk is everything the peer's compressor flushed
/// for one payload. Trusts nothing: a chunk that would expand past `max_size` fails with
/// `errc::compression_failed` ("compression bomb") before more than `max_size` + 1 bytes
/// are allocated for it; so does a corrupt chunk, or a stream whose window is above
/// 2^`window_log_max`.
class zstd_decoder {
public:
  static caf::expected<zstd_decoder> make(uint8_t window_log_max, uint32_t max_size);

  /// The payload `chunk` holds; valid until the next call.
  caf::expected<byte_span> decode(byte_span chunk);

  /// The decompression context's memory now (ZSTD_sizeof_DCtx).
  size_t context_bytes() const;

private:
  struct dctx_deleter {
    void operator()(ZSTD_DCtx_s* p) const;
  };
  zstd_decoder(std::unique_ptr<ZSTD_DCtx_s, dctx_deleter> dctx, uint32_t max_size);

  std::unique_ptr<ZSTD_DCtx_s, dctx_deleter> dctx_;
  uint32_t max_size_;
  byte_buffer out_;
};

/// The records of a compressed link, read from bytes cut anywhere (README "Compressed
/// links"). A record is one payload's zstd output after a varint of (its length << 1 |
/// stripped); stripped means the output was one compressed, non-last zstd block and goes
/// without its 3-byte block header, which the reader rebuilds from the length. Each whole
/// record is decoded through `in`; a record longer than any honest one for a payload of
/// `max_size` bytes, or that does not decode, is an error and ends the stream.
class zstd_record_reader {
public:
  zstd_record_reader(std::shared_ptr<zstd_decoder> in, uint32_t max_size);

  /// Reads `bytes`; calls `deliver` with each payload they complete, in order.
  caf::error feed(byte_span bytes, const std::function<void(byte_span)>& deliver);

  /// True while a record is unfinished (the stream must not end here).
  bool partial() const { return !pending_.empty(); }

private:
  /// Decodes the record at the start of `data` if it is whole: the bytes it took (0 if
  /// it is not whole yet).
  caf::expected<size_t> take(byte_span data, const std::function<void(byte_span)>& deliver);

  std::shared_ptr<zstd_decoder> in_;
  uint64_t max_record_;
  byte_buffer pending_; ///< an unfinished record's bytes
  byte_buffer block_;   ///< a stripped record with its header rebuilt
};

/// Compresses what it sends and decompresses what it receives over `inner`, one record
/// per payload (see zstd_record_reader): on a byte stream (a socket link, which
/// `make` switches to `enter_stream_mode`) nothing else frames them; over any other
/// link, each record is one of its payloads. What it receives goes through a `zstd_decoder` limited
/// to `inner->max_frame_size()` and `recv_window_log_max`; a chunk that fails it ends the
/// input with `errc::compression_failed` (a session answers with a ProtocolError).
///
/// Thread-safety as any link. Sends are compressed under a lock held across the inner
/// send, so the compressed stream leaves in the order it was produced.
class zstd_link final : public link, public std::enable_shared_from_this<zstd_link> {
public:
  /// Fails only when zstd cannot allocate its contexts or refuses the parameters.
  static caf::expected<std::shared_ptr<zstd_link>> make(link_ptr inner, const compression_agreement& agreed);

  ~zstd_link() override;

  bool congested() const override;
  void when_drained(std::function<void()> fn) override;
  caf::expected<std::optional<byte_buffer>> recv() override;
  void start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) override;
  void close() override;
  void abort() override;
  std::string describe() const override;
  uint32_t max_frame_size() const override;
  link_peer peer() const override;
  bool compressible() const override { return false; }

  /// For an inner link that is already started: the receiver its payloads must go to
  /// (decompressing into `session`). Use instead of `start`.
  std::shared_ptr<link_receiver> adopt_started(std::shared_ptr<link_receiver> session);

  /// Compression contexts' memory now, both directions (ZSTD_sizeof_*), for the README.
  size_t context_bytes() const;

  struct impl;

private:
  caf::expected<void> do_send(byte_span payload, caf::execution_unit* ctx) override;
  caf::expected<void> do_send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx) override;
  explicit zstd_link(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

/// The link a session runs on after `hs`: `lnk` itself, or a zstd_link over it when the
/// handshake agreed on compression. Fails (and aborts `lnk`) only when zstd cannot
/// allocate its contexts.
caf::expected<link_ptr> compress_if_agreed(link_ptr lnk, const handshake_result& hs);

/// For `session_link` that `compress_if_agreed` returned over a link already started (an
/// acceptor that read the handshake from its events): the receiver the started link must
/// now deliver to, so that `session` gets plain payloads (`session` itself when nothing
/// is compressed).
std::shared_ptr<link_receiver> started_input(const link_ptr& session_link, std::shared_ptr<link_receiver> session);

} // namespace vox
