// Link compression settings and what a handshake agreed on (README "Compressed links").
#pragma once

#include <cstdint>

namespace vox {

/// Whether a session compresses its link with zstd. Only vox-caf peers can: the offer
/// travels in the handshake under a key the reference skips, so a reference peer never
/// agrees and never sees a compressed byte.
enum class compression_mode : uint8_t {
  /// Neither offer nor accept: exactly the reference's bytes on the wire.
  off,
  /// Offer (initiator) or accept (acceptor); a peer that does not agree gets an
  /// uncompressed session, with no extra round trip.
  prefer,
  /// As `prefer`, but a peer that does not agree fails the handshake with
  /// `errc::compression_refused` (and is told why in a Sorry).
  require,
};

/// Every mode, in declaration order (for option parsers).
inline constexpr compression_mode compression_modes[] = {compression_mode::off, compression_mode::prefer,
                                                         compression_mode::require};

/// "off", "prefer" or "require".
const char* to_string(compression_mode mode);

/// A session's link compression. A memory link never compresses, whatever this says.
struct compression_options {
  compression_mode mode = compression_mode::off;
  /// zstd level for what we send (1 = fastest; zstd's range, negative levels included).
  int level = 1;
  /// log2 of the window: we compress with at most this window (or the peer's, if
  /// smaller) and refuse to decode a stream that declares a larger one. The window is
  /// what lets Messages compress against earlier ones; it is also most of a link's
  /// compression memory (README "Compressed links"). 14 (16 KiB) keeps both contexts of
  /// a link near 300 KiB and loses nothing on small Messages against larger windows.
  uint8_t window_log = 14;
};

/// What both ends of one link agreed on in the handshake.
struct compression_agreement {
  /// The window our compressor uses: min(ours, the peer's window_log_max).
  uint8_t send_window_log = 14;
  /// The largest window our decompressor accepts: ours.
  uint8_t recv_window_log_max = 14;
  int level = 1;
};

} // namespace vox
