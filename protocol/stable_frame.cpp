#include "protocol/stable_frame.hpp"

#include <algorithm>
#include <cstring>

#include "protocol/error.hpp"
#include "protocol/postcard.hpp"

namespace vox::stable {

namespace {

constexpr uint8_t client_magic[4] = {'V', 'O', 'C', 'H'};
constexpr uint8_t server_magic[4] = {'V', 'O', 'S', 'H'};
constexpr uint8_t flag_first = 1;  ///< ClientHello: has key; ServerHello: REJECTED
constexpr uint8_t flag_last = 2;   ///< has last_received

std::array<uint8_t, hello_size> encode_hello(const uint8_t (&magic)[4], uint8_t flags, const key& k,
                                             std::optional<uint32_t> last) {
  std::array<uint8_t, hello_size> out{};
  std::memcpy(out.data(), magic, 4);
  out[4] = static_cast<uint8_t>(flags | (last ? flag_last : 0));
  std::copy(k.begin(), k.end(), out.begin() + 5);
  auto v = last.value_or(0);
  for (int i = 0; i < 4; ++i)
    out[21 + i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

struct hello_fields {
  uint8_t flags;
  key k;
  std::optional<uint32_t> last;
};

caf::expected<hello_fields> parse_hello(byte_span bytes, const uint8_t (&magic)[4], const char* name) {
  if (bytes.size() != hello_size || std::memcmp(bytes.data(), magic, 4) != 0)
    return make_error(errc::handshake_failed, std::string{"not a stable "} + name + " (" + std::to_string(bytes.size())
                                                + " bytes)");
  hello_fields out{bytes[4], {}, std::nullopt};
  if ((out.flags & ~(flag_first | flag_last)) != 0)
    return make_error(errc::handshake_failed, std::string{"unknown flags in a stable "} + name);
  std::copy(bytes.begin() + 5, bytes.begin() + 21, out.k.begin());
  if (out.flags & flag_last)
    out.last = static_cast<uint32_t>(bytes[21]) | static_cast<uint32_t>(bytes[22]) << 8
               | static_cast<uint32_t>(bytes[23]) << 16 | static_cast<uint32_t>(bytes[24]) << 24;
  return out;
}

} // namespace

std::array<uint8_t, hello_size> encode(const client_hello& h) {
  return encode_hello(client_magic, h.resume_key ? flag_first : 0, h.resume_key.value_or(key{}), h.last_received);
}

std::array<uint8_t, hello_size> encode(const server_hello& h) {
  return encode_hello(server_magic, h.rejected ? flag_first : 0, h.resume_key, h.last_received);
}

caf::expected<client_hello> parse_client_hello(byte_span bytes) {
  auto f = parse_hello(bytes, client_magic, "ClientHello");
  if (!f)
    return std::move(f.error());
  client_hello out;
  if (f->flags & flag_first)
    out.resume_key = f->k;
  out.last_received = f->last;
  return out;
}

caf::expected<server_hello> parse_server_hello(byte_span bytes) {
  auto f = parse_hello(bytes, server_magic, "ServerHello");
  if (!f)
    return std::move(f.error());
  return server_hello{(f->flags & flag_first) != 0, f->k, f->last};
}

bool looks_like_client_hello(byte_span bytes) {
  return bytes.size() == hello_size && std::memcmp(bytes.data(), client_magic, 4) == 0;
}

void encode_frame(byte_buffer& out, const frame_header& header, byte_span item) {
  postcard::writer w{out};
  w.varint(header.seq);
  if (header.ack) {
    w.u8(1);
    w.varint(*header.ack);
  } else {
    w.u8(0);
  }
  w.fixed_u32(static_cast<uint32_t>(item.size()));
  w.raw(item.data(), item.size());
}

caf::expected<frame_view> decode_frame(byte_span bytes) {
  postcard::reader r{bytes};
  frame_view out;
  uint8_t tag = 0;
  uint32_t len = 0;
  if (!r.varint_as(out.header.seq) || !r.u8(tag))
    return r.take_error();
  if (tag > 1)
    return make_error(errc::invalid_tag, "stable frame ack: Option tag " + std::to_string(tag));
  if (tag == 1) {
    uint32_t ack = 0;
    if (!r.varint_as(ack))
      return r.take_error();
    out.header.ack = ack;
  }
  if (!r.fixed_u32(len))
    return r.take_error();
  if (len != r.remaining())
    return make_error(len > r.remaining() ? errc::truncated : errc::trailing_bytes,
                      "stable frame item of " + std::to_string(len) + " bytes in " + std::to_string(r.remaining()));
  out.item = bytes.subspan(r.position(), len);
  return out;
}

} // namespace vox::stable
