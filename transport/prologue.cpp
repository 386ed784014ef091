#include "transport/prologue.hpp"

#include <string>

#include "protocol/error.hpp"

namespace vox {

namespace {

/// "564f5448 (\"VOTH\")": the magic as it appears on the wire, readable where it is ASCII.
std::string render_magic(uint32_t magic) {
  uint8_t bytes[4] = {static_cast<uint8_t>(magic), static_cast<uint8_t>(magic >> 8),
                      static_cast<uint8_t>(magic >> 16), static_cast<uint8_t>(magic >> 24)};
  std::string text;
  for (auto b : bytes)
    text.push_back(b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '.');
  return to_hex(byte_span{bytes, 4}) + " (\"" + text + "\")";
}

/// Receives the one prologue payload expected from the peer; end of stream is an error.
caf::expected<byte_buffer> recv_prologue_payload(link& lnk) {
  auto payload = lnk.recv();
  if (!payload)
    return payload.error();
  if (!*payload)
    return make_error(errc::link_closed, "link closed during transport prologue");
  return std::move(**payload);
}

caf::expected<prologue_message> recv_prologue(link& lnk) {
  auto payload = recv_prologue_payload(lnk);
  if (!payload)
    return payload.error();
  return parse_prologue_message(*payload);
}

/// Answers a hello we refuse. Best effort: the refusal is the error worth reporting, not a
/// failure to deliver it.
// r[impl transport.prologue.reject-close]
void reject(link& lnk) {
  auto reply = encode_prologue_message(
    {transport_reject_magic, transport_prologue_version,
     static_cast<uint8_t>(transport_reject_reason::unsupported_mode)});
  [[maybe_unused]] auto sent = lnk.send(reply);
  lnk.close();
}

} // namespace

const char* to_string(conduit_mode mode) {
  switch (mode) {
    case conduit_mode::bare: return "bare";
    case conduit_mode::stable: return "stable";
  }
  return "unknown";
}

std::array<uint8_t, transport_prologue_size> encode_prologue_message(const prologue_message& msg) {
  return {static_cast<uint8_t>(msg.magic),
          static_cast<uint8_t>(msg.magic >> 8),
          static_cast<uint8_t>(msg.magic >> 16),
          static_cast<uint8_t>(msg.magic >> 24),
          msg.version,
          msg.value,
          0,
          0};
}

caf::expected<prologue_message> parse_prologue_message(byte_span bytes) {
  if (bytes.size() != transport_prologue_size)
    return make_error(errc::prologue_failed, "transport prologue message size mismatch (got "
                                               + std::to_string(bytes.size())
                                               + " bytes, expected 8)");
  prologue_message msg;
  msg.magic = static_cast<uint32_t>(bytes[0]) | (static_cast<uint32_t>(bytes[1]) << 8)
              | (static_cast<uint32_t>(bytes[2]) << 16) | (static_cast<uint32_t>(bytes[3]) << 24);
  msg.version = bytes[4];
  msg.value = bytes[5];
  return msg;
}

// r[impl transport.prologue]
// r[impl transport.prologue.first-payload]
// r[impl transport.prologue.request]
// r[impl transport.prologue.requested-mode]
caf::expected<conduit_mode> initiate_transport(link& lnk, conduit_mode requested) {
  auto hello = encode_prologue_message(
    {transport_hello_magic, transport_prologue_version, static_cast<uint8_t>(requested)});
  if (auto sent = lnk.send(hello); !sent)
    return sent.error();
  auto reply = recv_prologue(lnk);
  if (!reply)
    return reply.error();
  auto version_error = [&](const char* what) {
    return make_error(errc::prologue_failed, std::string{"unsupported transport version "}
                                               + std::to_string(reply->version) + " in "
                                               + what);
  };
  switch (reply->magic) {
    case transport_accept_magic:
      if (reply->version != transport_prologue_version)
        return version_error("TransportAccept");
      // r[impl transport.prologue.no-fallback]
      if (reply->value != static_cast<uint8_t>(requested))
        return make_error(errc::prologue_failed,
                          "transport accepted conduit mode " + std::to_string(reply->value)
                            + " but " + to_string(requested) + " was requested");
      // r[impl transport.prologue.post-accept]
      return requested;
    case transport_reject_magic: {
      if (reply->version != transport_prologue_version)
        return version_error("TransportReject");
      // r[impl transport.prologue.reject-close]
      lnk.close();
      if (reply->value == static_cast<uint8_t>(transport_reject_reason::unsupported_mode))
        return make_error(errc::prologue_rejected, "transport rejected: unsupported conduit mode");
      return make_error(errc::prologue_rejected, "transport rejected with unknown reason "
                                                   + std::to_string(reply->value));
    }
    default:
      return make_error(errc::prologue_failed,
                        "expected TransportAccept or TransportReject, got magic "
                          + render_magic(reply->magic));
  }
}

// r[impl transport.prologue]
// r[impl transport.prologue.accept]
caf::expected<conduit_mode> accept_transport(link& lnk, conduit_mode_set supported) {
  auto payload = recv_prologue_payload(lnk);
  if (!payload)
    return payload.error();
  return answer_transport_hello(lnk, *payload, supported);
}

caf::expected<conduit_mode> answer_transport_hello(link& lnk, byte_span payload, conduit_mode_set supported) {
  auto hello = parse_prologue_message(payload);
  if (!hello)
    return hello.error();
  // A peer that does not even speak the prologue gets no reply (as the Rust acceptor).
  if (hello->magic != transport_hello_magic)
    return make_error(errc::prologue_failed,
                      "transport hello magic mismatch: got " + render_magic(hello->magic));
  // A different version gets a reject, as the TypeScript acceptor sends, so that a newer
  // initiator learns why instead of seeing the link drop.
  if (hello->version != transport_prologue_version) {
    reject(lnk);
    return make_error(errc::prologue_failed,
                      "unsupported transport version " + std::to_string(hello->version));
  }
  if (hello->value > static_cast<uint8_t>(conduit_mode::stable)) {
    reject(lnk);
    return make_error(errc::prologue_failed,
                      "unknown conduit mode " + std::to_string(hello->value));
  }
  auto mode = static_cast<conduit_mode>(hello->value);
  // r[impl transport.prologue.no-fallback]
  if (!supported.contains(mode)) {
    reject(lnk);
    return make_error(errc::prologue_rejected,
                      std::string{"rejected unsupported conduit mode "} + to_string(mode));
  }
  auto accept = encode_prologue_message(
    {transport_accept_magic, transport_prologue_version, static_cast<uint8_t>(mode)});
  if (auto sent = lnk.send(accept); !sent)
    return sent.error();
  return mode;
}

} // namespace vox
