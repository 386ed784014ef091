// The vox wire vocabulary: `Message` and everything inside it (wire-format.md §4).
// Field order and variant order ARE the postcard wire order; do not reorder.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "protocol/bytes.hpp"

namespace vox {

using connection_id = uint64_t; ///< 0 is the root connection.
using request_id = uint64_t;
using channel_id = uint64_t; ///< 0 is reserved.
using method_id_t = uint64_t;

/// Which half of an id space a peer allocates from: Odd 1,3,5… or Even 2,4,6….
enum class parity : uint8_t { odd = 0, even = 1 };

constexpr parity opposite(parity p) { return p == parity::odd ? parity::even : parity::odd; }
const char* to_string(parity p);

/// Per-connection settings each side announces (in Hello/HelloYourself for the root).
struct connection_settings {
  vox::parity parity = parity::odd;
  uint32_t max_concurrent_requests = 64;
  friend bool operator==(const connection_settings&, const connection_settings&) = default;
};

/// Bits of `metadata_entry::flags`.
namespace metadata_flags {
constexpr uint64_t none = 0;
constexpr uint64_t sensitive = 1;    ///< never log the value
constexpr uint64_t no_propagate = 2; ///< never forward the entry
} // namespace metadata_flags

/// String(string) | Bytes(bytes) | U64(u64), in this variant order.
using metadata_value = std::variant<std::string, bytes, uint64_t>;

struct metadata_entry {
  std::string key;
  metadata_value value;
  uint64_t flags = metadata_flags::none;
  friend bool operator==(const metadata_entry&, const metadata_entry&) = default;
};

using metadata = std::vector<metadata_entry>;

struct protocol_error {
  std::string description;
  friend bool operator==(const protocol_error&, const protocol_error&) = default;
};
struct connection_open {
  vox::connection_settings connection_settings;
  vox::metadata metadata;
  friend bool operator==(const connection_open&, const connection_open&) = default;
};
struct connection_accept {
  vox::connection_settings connection_settings;
  vox::metadata metadata;
  friend bool operator==(const connection_accept&, const connection_accept&) = default;
};
struct connection_reject {
  vox::metadata metadata;
  friend bool operator==(const connection_reject&, const connection_reject&) = default;
};
struct connection_close {
  vox::metadata metadata;
  friend bool operator==(const connection_close&, const connection_close&) = default;
};

struct request_call {
  method_id_t method_id = 0;
  vox::metadata metadata; // before args on the wire
  payload args;
  std::vector<uint8_t> schemas; ///< empty, or a CBOR SchemaPayload
  friend bool operator==(const request_call&, const request_call&) = default;
};
struct request_response {
  vox::metadata metadata;
  payload ret;
  std::vector<uint8_t> schemas;
  friend bool operator==(const request_response&, const request_response&) = default;
};
struct request_cancel {
  vox::metadata metadata;
  friend bool operator==(const request_cancel&, const request_cancel&) = default;
};
/// Call | Response | Cancel.
using request_body = std::variant<request_call, request_response, request_cancel>;

struct request_message {
  request_id id = 0;
  request_body body;
  friend bool operator==(const request_message&, const request_message&) = default;
};

struct channel_item {
  payload item;
  friend bool operator==(const channel_item&, const channel_item&) = default;
};
struct channel_close {
  vox::metadata metadata;
  friend bool operator==(const channel_close&, const channel_close&) = default;
};
struct channel_reset {
  vox::metadata metadata;
  friend bool operator==(const channel_reset&, const channel_reset&) = default;
};
struct channel_grant_credit {
  uint32_t additional = 0;
  friend bool operator==(const channel_grant_credit&, const channel_grant_credit&) = default;
};
/// Item | Close | Reset | GrantCredit.
using channel_body = std::variant<channel_item, channel_close, channel_reset, channel_grant_credit>;

struct channel_message {
  channel_id id = 0;
  channel_body body;
  friend bool operator==(const channel_message&, const channel_message&) = default;
};

struct ping {
  uint64_t nonce = 0;
  friend bool operator==(const ping&, const ping&) = default;
};
struct pong {
  uint64_t nonce = 0;
  friend bool operator==(const pong&, const pong&) = default;
};

/// The nine payload variants, in wire order (index 0 … 8).
using message_payload =
  std::variant<protocol_error, connection_open, connection_accept, connection_reject,
               connection_close, request_message, channel_message, ping, pong>;

/// One unit of the bare conduit: one postcard `Message` per link payload.
struct message {
  vox::connection_id connection_id = 0;
  message_payload payload;
  friend bool operator==(const message&, const message&) = default;
};

} // namespace vox

// -- wire declarations (names and order as rust/vox-types) ----------------------------------

#include "protocol/describe.hpp"

namespace vox {

// r[impl session.parity]
VOX_ENUM(parity, "Parity", "Odd", "Even")
VOX_STRUCT(connection_settings, "ConnectionSettings", parity, max_concurrent_requests)
VOX_VARIANT(metadata_value, "MetadataValue", newtype_variant("String"), newtype_variant("Bytes"),
            newtype_variant("U64"))
VOX_STRUCT(metadata_entry, "MetadataEntry", key, value, flags)
VOX_STRUCT(protocol_error, "ProtocolError", description)
VOX_STRUCT(connection_open, "ConnectionOpen", connection_settings, metadata)
VOX_STRUCT(connection_accept, "ConnectionAccept", connection_settings, metadata)
VOX_STRUCT(connection_reject, "ConnectionReject", metadata)
VOX_STRUCT(connection_close, "ConnectionClose", metadata)
VOX_STRUCT(request_call, "RequestCall", method_id, metadata, args, schemas)
VOX_STRUCT(request_response, "RequestResponse", metadata, ret, schemas)
VOX_STRUCT(request_cancel, "RequestCancel", metadata)
VOX_VARIANT(request_body, "RequestBody", newtype_variant("Call"), newtype_variant("Response"),
            newtype_variant("Cancel"))
VOX_STRUCT(request_message, "RequestMessage", id, body)
VOX_STRUCT(channel_item, "ChannelItem", item)
VOX_STRUCT(channel_close, "ChannelClose", metadata)
VOX_STRUCT(channel_reset, "ChannelReset", metadata)
VOX_STRUCT(channel_grant_credit, "ChannelGrantCredit", additional)
VOX_VARIANT(channel_body, "ChannelBody", newtype_variant("Item"), newtype_variant("Close"),
            newtype_variant("Reset"), newtype_variant("GrantCredit"))
VOX_STRUCT(channel_message, "ChannelMessage", id, body)
VOX_STRUCT(ping, "Ping", nonce)
VOX_STRUCT(pong, "Pong", nonce)
VOX_VARIANT(message_payload, "MessagePayload", newtype_variant("ProtocolError"),
            newtype_variant("ConnectionOpen"), newtype_variant("ConnectionAccept"),
            newtype_variant("ConnectionReject"), newtype_variant("ConnectionClose"),
            newtype_variant("RequestMessage"), newtype_variant("ChannelMessage"),
            newtype_variant("Ping"), newtype_variant("Pong"))
VOX_STRUCT(message, "Message", connection_id, payload)

} // namespace vox

#include <caf/expected.hpp>

#include "protocol/codec.hpp"

namespace vox {

/// The bare-conduit encoding of one Message (one link payload).
byte_buffer encode_message(const message& msg);
void encode_message_into(byte_buffer& out, const message& msg);

/// Decodes one Message from a link payload. The reference ignores bytes after the message
/// (wire-format.md §3.2.2); `trailing::reject` is stricter, for tools and tests.
caf::expected<message> decode_message(byte_span data, trailing rest = trailing::allow);

/// The variant name of a payload, e.g. "RequestMessage".
const char* payload_name(const message_payload& p);

/// One stable, readable line describing `msg` (what vox-dump prints). Values of metadata
/// entries flagged SENSITIVE are shown as <redacted>; payloads are shown by size only.
std::string to_string(const message& msg);
std::string to_string(const metadata& md);

/// `md` as it may be forwarded to another peer: entries flagged NO_PROPAGATE removed.
metadata propagated(const metadata& md);

/// CBOR of the Message schema list (31 schemas), sent as Hello.message_payload_schema.
/// Generated from the declarations above; equals the reference's blob byte for byte.
const byte_buffer& message_schema_cbor();

} // namespace vox
