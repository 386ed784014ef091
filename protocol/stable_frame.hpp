// The stable conduit's bytes (wire-format.md §8): the 25-byte ClientHello/ServerHello
// that follow the CBOR handshake, and the Frame that wraps every Message after them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"

namespace vox::stable {

/// A stable conduit's resume key (distinct from the session's resume key).
using key = std::array<uint8_t, 16>;

/// Size of either hello.
constexpr size_t hello_size = 25;

/// The initiator's hello: fresh on the first link (both absent); on a reconnect, the key
/// the acceptor gave last and the last sequence number we received.
// r[impl stable.handshake.client-hello]
struct client_hello {
  std::optional<key> resume_key;
  std::optional<uint32_t> last_received;
  friend bool operator==(const client_hello&, const client_hello&) = default;
};

/// The acceptor's answer: a fresh key for the next reconnect, the last sequence number it
/// received, or REJECTED (the conduit is gone: the session is lost).
// r[impl stable.handshake.server-hello]
struct server_hello {
  bool rejected = false;
  key resume_key{};
  std::optional<uint32_t> last_received;
  friend bool operator==(const server_hello&, const server_hello&) = default;
};

/// "VOCH" | flags (1: has key, 2: has last_received) | key[16] | last_received u32 LE.
std::array<uint8_t, hello_size> encode(const client_hello& h);
/// "VOSH" | flags (1: REJECTED, 2: has last_received) | key[16] | last_received u32 LE.
std::array<uint8_t, hello_size> encode(const server_hello& h);
/// Fails with errc::handshake_failed on a wrong size, magic or unknown flag bit.
caf::expected<client_hello> parse_client_hello(byte_span bytes);
caf::expected<server_hello> parse_server_hello(byte_span bytes);
/// True if `bytes` has the size and magic of a ClientHello (it may still not parse).
bool looks_like_client_hello(byte_span bytes);

/// A frame without its item: postcard `{seq: u32, ack: Option<{max_delivered: u32}>}`.
struct frame_header {
  uint32_t seq = 0;
  std::optional<uint32_t> ack; ///< the last seq the sender received from us, if any
};

/// A decoded frame; `item` points into the decoded bytes (a postcard Message).
struct frame_view {
  frame_header header;
  byte_span item;
};

/// Appends the frame `{header, item}` to `out`; item is an opaque payload (u32 LE length).
// r[impl stable.framing.encoding]
void encode_frame(byte_buffer& out, const frame_header& header, byte_span item);
/// Decodes one frame that must fill `bytes` exactly.
caf::expected<frame_view> decode_frame(byte_span bytes);

/// RFC 1982 serial-number order on u32 sequence numbers: true if `a` comes after `b`
/// (fewer than 2^31 steps ahead, across the wrap).
// r[impl stable.seq]
constexpr bool seq_after(uint32_t a, uint32_t b) { return a != b && static_cast<uint32_t>(a - b) < 0x80000000u; }

} // namespace vox::stable
