// The CBOR session handshake messages (wire-format.md §5.2): Hello, HelloYourself, LetsGo, Sorry.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"
#include "protocol/message.hpp"

namespace vox {

/// The initiator's opening message.
struct hello {
  /// The id half the initiator allocates from; Rust sends the same value in `settings`.
  vox::parity parity = vox::parity::odd;
  /// The initiator's root connection settings.
  connection_settings settings;
  /// The CBOR array of schemas describing the sender's `Message`, embedded verbatim.
  /// Empty means "no schemas" and is written as the empty array `80`.
  byte_buffer message_payload_schema;
  /// Whether the sender adds operation ids and can retry (absent on the wire = false).
  bool supports_retry = false;
  /// A session resume key the sender presents (absent on the wire = none).
  std::optional<byte_buffer> resume_key;
  /// vox-caf's zstd link compression, which the reference does not have: present when the
  /// sender compresses and decodes compressed links, holding the log2 of the largest
  /// window it decodes. Written last, under the key "vox_caf_zstd" as the map
  /// {"window_log_max": uint}, only when set; the reference skips it as an unknown key.
  std::optional<uint8_t> zstd_window_log_max;
  friend bool operator==(const hello&, const hello&) = default;
};

/// The acceptor's answer to `hello`: the same fields without the top-level parity.
struct hello_yourself {
  /// The acceptor's root connection settings; its parity is the opposite of the initiator's.
  connection_settings settings;
  /// As in `hello`.
  byte_buffer message_payload_schema;
  /// As in `hello`.
  bool supports_retry = false;
  /// The acceptor's session resume key (16 random bytes when resumable).
  std::optional<byte_buffer> resume_key;
  /// As in `hello`: the acceptor agrees to compress only by answering an offer with it.
  std::optional<uint8_t> zstd_window_log_max;
  friend bool operator==(const hello_yourself&, const hello_yourself&) = default;
};

/// The initiator's confirmation that completes the handshake.
struct lets_go {
  friend bool operator==(const lets_go&, const lets_go&) = default;
};

/// Either side's refusal, ending the handshake.
struct sorry {
  /// Human-readable cause.
  std::string reason;
  friend bool operator==(const sorry&, const sorry&) = default;
};

/// One handshake payload; the variant order is not a wire order (CBOR names the variant).
using handshake_message = std::variant<hello, hello_yourself, lets_go, sorry>;

/// Name of the CBOR variant carried by `msg`, e.g. "HelloYourself".
const char* handshake_message_name(const handshake_message& msg);

/// Encodes `msg` exactly as facet-cbor does: a one-entry map keyed by the variant name,
/// struct fields in declaration order, every optional field written.
byte_buffer encode_handshake(const handshake_message& msg);

/// Key and range of `zstd_window_log_max` (zstd's own window limits on 64-bit hosts).
inline constexpr std::string_view zstd_handshake_key = "vox_caf_zstd";
inline constexpr uint8_t zstd_window_log_min = 10;
inline constexpr uint8_t zstd_window_log_limit = 31;

/// Decodes one handshake payload. Fields are found by name and unknown keys skipped;
/// `supports_retry`, `resume_key` and `zstd_window_log_max` default when absent (a window
/// log outside [10, 31] fails with `errc::cbor_malformed`); `message_payload_schema` must be
/// present and an array. Malformed or trailing input fails with `errc::cbor_malformed`.
caf::expected<handshake_message> decode_handshake(byte_span cbor);

} // namespace vox
