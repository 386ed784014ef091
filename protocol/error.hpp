// Error codes for everything vox-caf reports: decoding, handshake, transport, session.
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace vox {

/// Every failure vox-caf reports, as the code of a `caf::error` in category `vox_error_category`.
/// The error's context carries one human-readable string (see `make_error`).
enum class errc : uint8_t {
  /// Input ended before the value was complete.
  truncated = 1,
  /// A varint ran past 10 bytes (or past 19 for 128-bit values).
  varint_overflow,
  /// An enum/Result/Option/bool tag that names no variant.
  invalid_tag,
  /// A string was not valid UTF-8.
  invalid_utf8,
  /// A declared length or count exceeds what the input or a configured limit allows.
  length_limit,
  /// Bytes left over where a decoder requires the input to be consumed completely.
  trailing_bytes,
  /// A decoded value violates a rule of the protocol (not just its encoding).
  invalid_value,
  /// CBOR input is malformed or does not have the expected shape.
  cbor_malformed,
  /// The transport prologue failed: wrong magic, version, size or mode.
  prologue_failed,
  /// The acceptor answered the transport prologue with a reject.
  prologue_rejected,
  /// The CBOR session handshake failed (unexpected message, Sorry, bad fields).
  handshake_failed,
  /// A link frame is larger than the configured maximum.
  frame_too_large,
  /// The peer closed the link (cleanly) where more data was required.
  link_closed,
  /// An operating-system I/O call failed.
  io_error,
  /// A deadline passed.
  timeout,
  /// The local side closed or shut down the object used.
  closed,
  /// The peer rejected a connection open (its metadata is in the description).
  rejected,
  /// The connection a call or operation was on has been closed.
  connection_closed,
  /// The session ended.
  session_shutdown,
  /// A local request that the protocol does not allow (closing the root, an unknown id).
  invalid_request,
  /// The peer broke a protocol rule; the session answers with ProtocolError and ends.
  protocol_violation,
  /// The caller cancelled the call.
  cancelled,
  /// The peer stopped reading: its outbound queue passed its limit or made no progress
  /// within the stall timeout.
  backpressure,
  /// One of vox-caf's own actors died (e.g. a session's keepalive monitor).
  internal,
  /// A resumable session lost its link and did not get it back: no resume before its
  /// deadline, reconnecting gave up, or the resume was refused.
  session_lost,
  /// A resume was refused: unknown key, changed settings, or a session that cannot resume.
  resume_refused,
  /// Compression was required and the peer did not agree to it.
  compression_refused,
  /// A compressed stream could not be decoded: corrupt, or it declares a larger window
  /// than we accept.
  compression_failed,
  /// TLS failed: a certificate that did not verify (the reason names why), a peer that
  /// does not speak TLS (or speaks it where we do not), or a broken record.
  tls_failed,
};

/// The CAF error category of vox errors.
constexpr caf::atom_value vox_error_category = caf::atom("vox");

/// Short stable name of a code, e.g. "truncated".
const char* to_string(errc code);

/// Builds a `caf::error` with `code` and a description of what happened.
caf::error make_error(errc code, std::string what);

/// True if `err` is a vox error with `code`.
bool is(const caf::error& err, errc code);

/// Renders any error as "name: description" for vox errors, CAF's own rendering otherwise.
std::string describe(const caf::error& err);

} // namespace vox
