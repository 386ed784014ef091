// The transport prologue: the first payload in each direction picks the conduit mode.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"
#include "transport/link.hpp"

namespace vox {

/// How payloads after the prologue are interpreted (wire-format.md §2, §3, §8).
enum class conduit_mode : uint8_t {
  /// One postcard `Message` per payload.
  bare = 0,
  /// Sequenced, acknowledged frames that survive reconnects.
  stable = 1,
};

/// "bare" or "stable"; "unknown" for anything else.
const char* to_string(conduit_mode mode);

/// Why an acceptor refused a transport hello.
enum class transport_reject_reason : uint8_t {
  /// The requested conduit mode is not available on this link.
  unsupported_mode = 1,
};

/// Version byte of every prologue message.
constexpr uint8_t transport_prologue_version = 9;

/// Size of every prologue message.
constexpr size_t transport_prologue_size = 8;

/// Magic of `TransportHello`: "VOTH" (the ASCII bytes, read as a little-endian u32).
constexpr uint32_t transport_hello_magic = 0x48544f56;
/// Magic of `TransportAccept`: "VOTA".
constexpr uint32_t transport_accept_magic = 0x41544f56;
/// Magic of `TransportReject`: "VOTR".
constexpr uint32_t transport_reject_magic = 0x52544f56;

/// One prologue message: {magic u32 LE, version u8, mode or reason u8, reserved [2] = 0}.
struct prologue_message {
  /// One of the `transport_*_magic` constants, or whatever the peer sent.
  uint32_t magic = 0;
  /// `transport_prologue_version` when we send it.
  uint8_t version = transport_prologue_version;
  /// The conduit mode of a hello or an accept, the reason of a reject.
  uint8_t value = 0;
};

/// The 8 bytes of `msg`, reserved bytes zero.
std::array<uint8_t, transport_prologue_size> encode_prologue_message(const prologue_message& msg);

/// Reads an 8-byte prologue message; any other size fails with `errc::prologue_failed`.
/// Magic and version are left for the caller to judge; reserved bytes are ignored, as
/// every reference implementation does.
caf::expected<prologue_message> parse_prologue_message(byte_span bytes);

/// A set of conduit modes, e.g. the ones an acceptor supports.
class conduit_mode_set {
public:
  constexpr conduit_mode_set(std::initializer_list<conduit_mode> modes) noexcept {
    for (auto mode : modes)
      bits_ |= bit(mode);
  }

  /// True if `mode` is in the set.
  constexpr bool contains(conduit_mode mode) const noexcept {
    return (bits_ & bit(mode)) != 0;
  }

private:
  static constexpr uint32_t bit(conduit_mode mode) noexcept {
    return static_cast<uint8_t>(mode) < 32 ? uint32_t{1} << static_cast<uint8_t>(mode) : 0;
  }

  uint32_t bits_ = 0;
};

/// Runs the initiator's side of the prologue: sends `TransportHello` with `requested` and
/// reads one reply. Returns `requested` on an accept that echoes it. Fails with
/// `errc::prologue_rejected` on a reject (and then closes the link), `errc::link_closed` at
/// end of stream, `errc::prologue_failed` on anything malformed or unexpected, or with the
/// link's own error.
caf::expected<conduit_mode> initiate_transport(link& lnk, conduit_mode requested);

/// Runs the acceptor's side of the prologue: reads `TransportHello` and answers it. A
/// supported mode is accepted as requested; there is no fallback to another mode. A wrong
/// size or magic fails with `errc::prologue_failed` without a reply. A wrong version or an
/// unknown mode is answered with a reject and fails with `errc::prologue_failed`; a known
/// but unsupported mode is answered with a reject and fails with `errc::prologue_rejected`.
/// After sending a reject the link is closed. Stable mode is not implemented yet, hence
/// the default.
caf::expected<conduit_mode> accept_transport(link& lnk,
                                             conduit_mode_set supported = {conduit_mode::bare});

/// `accept_transport` for a `TransportHello` payload that has already arrived: answers it
/// on `lnk` exactly as `accept_transport` does. For acceptors driven by their link's events.
caf::expected<conduit_mode> answer_transport_hello(link& lnk, byte_span payload,
                                                   conduit_mode_set supported = {conduit_mode::bare});

} // namespace vox
