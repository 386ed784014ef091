// A link carries whole payloads between two peers: the lowest layer of vox.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"
#include "protocol/error.hpp"

namespace vox {

/// Limits every link enforces on what it receives.
struct link_options {
  /// Largest payload accepted from the peer; larger frames fail with
  /// `errc::frame_too_large` before anything is allocated for them.
  uint32_t max_frame_size = 16u * 1024 * 1024;
};

/// A bidirectional, ordered, reliable channel of whole payloads (r[link]).
///
/// Threading contract: `send` may be called from any thread (calls are serialised
/// internally and each payload is written whole); `recv` must be called by one
/// thread at a time; `close` and `abort` may be called from any thread at any time.
class link {
public:
  virtual ~link() = default;

  /// Sends one payload (empty payloads are legal, r[link.message.empty]). Blocks until
  /// the payload is handed to the transport. Fails with `errc::closed` after `close`/`abort`,
  /// or with `errc::io_error`/`errc::link_closed` when the transport broke.
  virtual caf::expected<void> send(byte_span payload) = 0;

  /// Receives the next payload. Blocks until one arrives. Returns `std::nullopt` on a clean
  /// end of stream (the peer closed at a frame boundary, r[link.rx.eof]); an error when the
  /// stream broke mid-frame, a frame exceeds the limit, or the link was aborted locally.
  virtual caf::expected<std::optional<byte_buffer>> recv() = 0;

  /// Graceful close of our sending direction: payloads already sent are delivered, then
  /// the peer's `recv` sees end of stream. Receiving continues to work.
  virtual void close() = 0;

  /// Tears the link down in both directions and wakes a blocked `recv` (which then fails
  /// with `errc::closed`). Idempotent. Used for shutdown and for handshake timeouts.
  virtual void abort() = 0;

  /// A short human-readable description, e.g. "tcp 127.0.0.1:5000->127.0.0.1:41234".
  virtual std::string describe() const = 0;
};

using link_ptr = std::shared_ptr<link>;

} // namespace vox
