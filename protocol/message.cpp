#include "protocol/message.hpp"

#include <cstdio>

#include "protocol/schema_gen.hpp"

namespace vox {

const char* to_string(parity p) { return p == parity::odd ? "Odd" : "Even"; }

void encode_message_into(byte_buffer& out, const message& msg) { encode_into(out, msg); }

byte_buffer encode_message(const message& msg) { return encode(msg); }

caf::expected<message> decode_message(byte_span data, trailing rest) {
  return decode<message>(data, rest);
}

const char* payload_name(const message_payload& p) {
  constexpr auto desc = vox_describe(static_cast<const message_payload*>(nullptr));
  return desc.variants[p.index()].name.data();
}

namespace {

void append_quoted(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

std::string settings_text(const connection_settings& s) {
  return std::string{"parity="} + to_string(s.parity)
         + " max_concurrent_requests=" + std::to_string(s.max_concurrent_requests);
}

std::string size_text(const char* name, size_t n) {
  return std::string{name} + "=" + std::to_string(n) + "B";
}

} // namespace

std::string to_string(const metadata& md) {
  std::string out = "[";
  for (size_t i = 0; i < md.size(); ++i) {
    const auto& e = md[i];
    if (i > 0)
      out += ", ";
    append_quoted(out, e.key);
    if (e.flags != metadata_flags::none) {
      out += "(";
      std::string flags;
      if (e.flags & metadata_flags::sensitive)
        flags += "sensitive";
      if (e.flags & metadata_flags::no_propagate)
        flags += flags.empty() ? "no_propagate" : "|no_propagate";
      if (auto rest = e.flags & ~(metadata_flags::sensitive | metadata_flags::no_propagate)) {
        char buf[24];
        std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(rest));
        flags += (flags.empty() ? "" : "|") + std::string{buf};
      }
      out += flags + ")";
    }
    out += "=";
    if (e.flags & metadata_flags::sensitive) {
      out += "<redacted>";
      continue;
    }
    std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>)
          append_quoted(out, v);
        else if constexpr (std::is_same_v<T, bytes>)
          out += "0x" + to_hex(v);
        else
          out += std::to_string(v);
      },
      e.value);
  }
  return out + "]";
}

metadata propagated(const metadata& md) {
  metadata out;
  for (const auto& e : md)
    if ((e.flags & metadata_flags::no_propagate) == 0)
      out.push_back(e);
  return out;
}

std::string to_string(const message& msg) {
  std::string out = "conn=" + std::to_string(msg.connection_id) + " " + payload_name(msg.payload);
  auto meta = [&](const metadata& md) { out += " meta=" + to_string(md); };
  std::visit(
    [&](const auto& p) {
      using T = std::decay_t<decltype(p)>;
      if constexpr (std::is_same_v<T, protocol_error>) {
        out += " description=";
        append_quoted(out, p.description);
      } else if constexpr (std::is_same_v<T, connection_open> || std::is_same_v<T, connection_accept>) {
        out += " " + settings_text(p.connection_settings);
        meta(p.metadata);
      } else if constexpr (std::is_same_v<T, connection_reject> || std::is_same_v<T, connection_close>) {
        meta(p.metadata);
      } else if constexpr (std::is_same_v<T, request_message>) {
        out += " id=" + std::to_string(p.id);
        std::visit(
          [&](const auto& b) {
            using B = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<B, request_call>) {
              char id[24];
              std::snprintf(id, sizeof id, "0x%016llx", static_cast<unsigned long long>(b.method_id));
              out += std::string{" Call method="} + id;
              meta(b.metadata);
              out += " " + size_text("args", b.args.size()) + " " + size_text("schemas", b.schemas.size());
            } else if constexpr (std::is_same_v<B, request_response>) {
              out += " Response";
              meta(b.metadata);
              out += " " + size_text("ret", b.ret.size()) + " " + size_text("schemas", b.schemas.size());
            } else {
              out += " Cancel";
              meta(b.metadata);
            }
          },
          p.body);
      } else if constexpr (std::is_same_v<T, channel_message>) {
        out += " id=" + std::to_string(p.id);
        std::visit(
          [&](const auto& b) {
            using B = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<B, channel_item>) {
              out += " Item " + size_text("item", b.item.size());
            } else if constexpr (std::is_same_v<B, channel_close>) {
              out += " Close";
              meta(b.metadata);
            } else if constexpr (std::is_same_v<B, channel_reset>) {
              out += " Reset";
              meta(b.metadata);
            } else {
              out += " GrantCredit additional=" + std::to_string(b.additional);
            }
          },
          p.body);
      } else {
        out += " nonce=" + std::to_string(p.nonce);
      }
    },
    msg.payload);
  return out;
}

const byte_buffer& message_schema_cbor() {
  // r[impl session.handshake.protocol-schema]
  static const byte_buffer blob = schema::encode_schema_list(schema::schemas_of<message>());
  return blob;
}

} // namespace vox
