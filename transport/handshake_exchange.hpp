// The session handshake over a link (wire-format.md §5.3, session-behaviours.md §2.3):
// Hello -> HelloYourself -> LetsGo, run once after the transport prologue.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"
#include "protocol/message.hpp"
#include "transport/compression.hpp"
#include "transport/link.hpp"

namespace vox {

/// Size of a session resume key; keys of any other length are ignored, as Rust does.
constexpr size_t session_resume_key_size = 16;

/// What we announce in the handshake.
struct handshake_options {
  /// Our root connection settings. The initiator sends `settings.parity` (Odd by default,
  /// which a default Rust acceptor requires); the acceptor ignores it and takes the
  /// opposite of the initiator's parity.
  connection_settings settings;
  /// Whether we add operation ids and can retry; false is fine for a minimal peer.
  bool supports_retry = false;
  /// Acceptor only: send a fresh random 16-byte resume key. Rust and TS initiators
  /// that want resumption fail without one, so this defaults to true.
  bool resumable = true;
  /// Initiator only: a resume key to present (when resuming a session).
  std::optional<byte_buffer> resume_key;
  /// Acceptor only: whether a resume key that a Hello presents names a session we can
  /// resume. A Hello presenting a key this does not know (any key, when unset) gets
  /// Sorry("unknown session resume key") instead of HelloYourself: a resuming initiator
  /// must never believe it resumed when it got a fresh session (interop README).
  std::function<bool(byte_span)> known_resume_key;
  /// The CBOR schema array describing our `Message`, sent verbatim. Defaults to the list
  /// generated from our own declarations (the reference's blob, byte for byte); empty
  /// sends `[]`, which every reference peer also accepts (identity translation plan).
  // r[impl session.handshake.protocol-schema]
  byte_buffer message_payload_schema = message_schema_cbor();
  /// zstd link compression: offered (initiator) or accepted (acceptor) unless off, and
  /// never on a link that is not `compressible()`.
  compression_options compression;
};

/// Which side of the handshake we played.
enum class session_role : uint8_t { initiator, acceptor };

/// "initiator" or "acceptor".
const char* to_string(session_role role);

/// What a completed handshake established.
struct handshake_result {
  /// The side we played.
  session_role role = session_role::initiator;
  /// The settings we announced (for the acceptor, with the negotiated parity).
  connection_settings our_settings;
  /// The settings the peer announced.
  connection_settings peer_settings;
  /// The peer's `supports_retry`.
  bool peer_supports_retry = false;
  /// The session's resume key: the acceptor's key (ours as acceptor, the peer's as
  /// initiator), kept only if it is exactly 16 bytes.
  std::optional<std::array<uint8_t, session_resume_key_size>> session_resume_key;
  /// The `resume_key` the peer sent, whatever its length.
  std::optional<byte_buffer> peer_resume_key;
  /// The peer's raw `message_payload_schema` (a CBOR array), for `decode_schema_list`.
  byte_buffer peer_message_payload_schema;
  /// Set when both sides said they compress: the initiator offered in Hello and the
  /// acceptor answered in HelloYourself. Everything after the handshake (after the
  /// stable hellos, under the stable conduit) is then compressed (`compress_if_agreed`).
  std::optional<compression_agreement> compression;
};

/// Runs the initiator's side: sends Hello, expects HelloYourself, sends LetsGo. Schemas
/// are not compared (neither does Rust). Fails with `errc::handshake_failed` on a Sorry
/// ("peer sent Sorry: <reason>"), an unexpected or undecodable message; with
/// `errc::link_closed` when the peer closes first; with `errc::compression_refused` when
/// compression is required and the acceptor did not agree (after telling it so in a
/// Sorry); or with the link's own error. Nothing is closed on failure: the caller owns
/// the link.
caf::expected<handshake_result> handshake_as_initiator(link& lnk, const handshake_options& opts);

/// Runs the acceptor's side: expects Hello (anything else fails without a reply), answers
/// HelloYourself with the opposite parity and, when `opts.resumable`, a fresh random key,
/// then expects LetsGo. Fails like `handshake_as_initiator` (`errc::compression_refused`
/// when compression is required and the Hello did not offer it, after a Sorry), or with
/// `errc::io_error` when the system's random source fails.
caf::expected<handshake_result> handshake_as_acceptor(link& lnk, const handshake_options& opts);

/// The acceptor's two steps for links driven by their events, with the same checks and
/// errors as `handshake_as_acceptor`: answer a Hello payload with HelloYourself on `lnk`,
/// then check that the next payload is LetsGo (an error otherwise, e.g. a Sorry).
caf::expected<handshake_result> answer_hello(link& lnk, byte_span payload, const handshake_options& opts);
caf::error expect_lets_go(byte_span payload);

/// A fresh session resume key from the operating system's CSPRNG.
caf::expected<std::array<uint8_t, session_resume_key_size>> make_session_resume_key();

} // namespace vox
