#include "protocol/handshake.hpp"

#include <limits>

#include "protocol/cbor.hpp"
#include "protocol/error.hpp"

namespace vox {

namespace {

// -- encoding -----------------------------------------------------------------

void write_parity(cbor_writer& w, parity p) {
  // An externally tagged unit variant: {"Odd": null}.
  w.write_map_header(1);
  w.write_text(p == parity::odd ? "Odd" : "Even");
  w.write_null();
}

void write_settings(cbor_writer& w, const connection_settings& s) {
  w.write_map_header(2);
  w.write_text("parity");
  write_parity(w, s.parity);
  w.write_text("max_concurrent_requests");
  w.write_uint(s.max_concurrent_requests);
}

// The fields Hello and HelloYourself share, in declaration order.
void write_common(cbor_writer& w, const connection_settings& settings, const byte_buffer& schema,
                  bool supports_retry, const std::optional<byte_buffer>& resume_key) {
  w.write_text("connection_settings");
  write_settings(w, settings);
  w.write_text("message_payload_schema");
  if (schema.empty())
    w.write_array_header(0);
  else
    w.write_raw(schema);
  w.write_text("supports_retry");
  w.write_bool(supports_retry);
  w.write_text("resume_key");
  if (resume_key) {
    w.write_map_header(1);
    w.write_text("bytes");
    w.write_bytes(*resume_key);
  } else {
    w.write_null();
  }
}

void write_zstd(cbor_writer& w, const std::optional<uint8_t>& window_log_max) {
  if (!window_log_max)
    return;
  w.write_text(zstd_handshake_key);
  w.write_map_header(1);
  w.write_text("window_log_max");
  w.write_uint(*window_log_max);
}

// -- decoding -----------------------------------------------------------------

caf::expected<parity> read_parity(cbor_reader& r) {
  auto at = r.absolute_position();
  auto m = cbor_map::read(r, "Parity");
  if (!m)
    return std::move(m.error());
  if (m->entries().size() != 1)
    return m->fail(at, "Parity must be a one-entry map");
  const auto& e = m->entries().front();
  if (e.key != "Odd" && e.key != "Even")
    return m->fail(at, "unknown Parity variant \"" + std::string{e.key} + "\"");
  auto vr = e.reader();
  if (auto ok = vr.read_null(); !ok)
    return std::move(ok.error());
  return e.key == "Odd" ? parity::odd : parity::even;
}

caf::expected<connection_settings> read_settings(cbor_reader& r) {
  auto m = cbor_map::read(r, "ConnectionSettings");
  if (!m)
    return std::move(m.error());
  connection_settings s;
  auto p = m->get<parity>("parity", read_parity);
  if (!p)
    return std::move(p.error());
  s.parity = *p;
  auto max = m->get<uint64_t>("max_concurrent_requests",
                              [](cbor_reader& vr) { return vr.read_uint(); });
  if (!max)
    return std::move(max.error());
  if (*max > std::numeric_limits<uint32_t>::max())
    return m->fail(m->offset(), "max_concurrent_requests " + std::to_string(*max)
                                  + " exceeds u32");
  s.max_concurrent_requests = static_cast<uint32_t>(*max);
  return s;
}

caf::expected<byte_buffer> read_schema_array(cbor_reader& r) {
  auto type = r.peek_type();
  if (!type)
    return std::move(type.error());
  if (*type != cbor_type::array)
    return r.error_here(std::string{"message_payload_schema must be an array, found "}
                        + to_string(*type));
  auto raw = r.raw_item();
  if (!raw)
    return std::move(raw.error());
  return byte_buffer(raw->begin(), raw->end());
}

caf::expected<std::optional<byte_buffer>> read_resume_key(cbor_reader& r) {
  if (r.try_read_null())
    return std::optional<byte_buffer>{};
  auto m = cbor_map::read(r, "ResumeKeyBytes");
  if (!m)
    return std::move(m.error());
  auto key = m->get<byte_buffer>("bytes", [](cbor_reader& vr) { return vr.read_bytes(); });
  if (!key)
    return std::move(key.error());
  return std::optional<byte_buffer>{std::move(*key)};
}

caf::expected<std::optional<uint8_t>> read_zstd(cbor_reader& r) {
  auto m = cbor_map::read(r, "vox_caf_zstd");
  if (!m)
    return std::move(m.error());
  auto log = m->get<uint64_t>("window_log_max", [](cbor_reader& vr) { return vr.read_uint(); });
  if (!log)
    return std::move(log.error());
  if (*log < zstd_window_log_min || *log > zstd_window_log_limit)
    return m->fail(m->offset(), "vox_caf_zstd window_log_max " + std::to_string(*log) + " is outside ["
                                  + std::to_string(zstd_window_log_min) + ", "
                                  + std::to_string(zstd_window_log_limit) + "]");
  return std::optional<uint8_t>{static_cast<uint8_t>(*log)};
}

/// Reads the fields Hello and HelloYourself share from `m` into `out`.
template <class Message>
caf::expected<void> read_common(const cbor_map& m, Message& out) {
  auto settings = m.get<connection_settings>("connection_settings", read_settings);
  if (!settings)
    return std::move(settings.error());
  out.settings = *settings;
  // Required even though Rust could default it: TypeScript rejects a missing list.
  auto schema = m.get<byte_buffer>("message_payload_schema", read_schema_array);
  if (!schema)
    return std::move(schema.error());
  out.message_payload_schema = std::move(*schema);
  auto retry = m.get_or<bool>("supports_retry", false,
                              [](cbor_reader& vr) { return vr.read_bool(); });
  if (!retry)
    return std::move(retry.error());
  out.supports_retry = *retry;
  auto key = m.get_or<std::optional<byte_buffer>>("resume_key", std::nullopt, read_resume_key);
  if (!key)
    return std::move(key.error());
  out.resume_key = std::move(*key);
  auto zstd = m.get_or<std::optional<uint8_t>>(zstd_handshake_key, std::nullopt, read_zstd);
  if (!zstd)
    return std::move(zstd.error());
  out.zstd_window_log_max = *zstd;
  return {};
}

caf::expected<handshake_message> read_body(const cbor_map::entry& e) {
  auto r = e.reader();
  if (e.key == "Sorry") {
    auto m = cbor_map::read(r, "Sorry");
    if (!m)
      return std::move(m.error());
    auto reason = m->get<std::string>("reason", [](cbor_reader& vr) { return vr.read_text(); });
    if (!reason)
      return std::move(reason.error());
    return sorry{std::move(*reason)};
  }
  if (e.key == "LetsGo") {
    // An empty struct: a map, whose (unexpected) entries are skipped like unknown keys.
    auto m = cbor_map::read(r, "LetsGo");
    if (!m)
      return std::move(m.error());
    return lets_go{};
  }
  if (e.key == "Hello") {
    auto m = cbor_map::read(r, "Hello");
    if (!m)
      return std::move(m.error());
    hello h;
    auto p = m->get<parity>("parity", read_parity);
    if (!p)
      return std::move(p.error());
    h.parity = *p;
    if (auto ok = read_common(*m, h); !ok)
      return std::move(ok.error());
    return h;
  }
  if (e.key == "HelloYourself") {
    auto m = cbor_map::read(r, "HelloYourself");
    if (!m)
      return std::move(m.error());
    hello_yourself hy;
    if (auto ok = read_common(*m, hy); !ok)
      return std::move(ok.error());
    return hy;
  }
  return make_error(errc::cbor_malformed, "CBOR at byte 0: unknown handshake message \""
                                            + std::string{e.key} + "\"");
}

} // namespace

const char* handshake_message_name(const handshake_message& msg) {
  static constexpr const char* names[] = {"Hello", "HelloYourself", "LetsGo", "Sorry"};
  return names[msg.index()];
}

// r[impl session.handshake.cbor]
byte_buffer encode_handshake(const handshake_message& msg) {
  byte_buffer out;
  cbor_writer w{out};
  w.write_map_header(1);
  w.write_text(handshake_message_name(msg));
  if (auto h = std::get_if<hello>(&msg)) {
    w.write_map_header(h->zstd_window_log_max ? 6 : 5);
    w.write_text("parity");
    write_parity(w, h->parity);
    write_common(w, h->settings, h->message_payload_schema, h->supports_retry, h->resume_key);
    write_zstd(w, h->zstd_window_log_max);
  } else if (auto hy = std::get_if<hello_yourself>(&msg)) {
    w.write_map_header(hy->zstd_window_log_max ? 5 : 4);
    write_common(w, hy->settings, hy->message_payload_schema, hy->supports_retry,
                 hy->resume_key);
    write_zstd(w, hy->zstd_window_log_max);
  } else if (std::holds_alternative<lets_go>(msg)) {
    w.write_map_header(0); // an empty map, not null
  } else {
    w.write_map_header(1);
    w.write_text("reason");
    w.write_text(std::get<sorry>(msg).reason);
  }
  return out;
}

// r[impl session.handshake.cbor]
caf::expected<handshake_message> decode_handshake(byte_span cbor) {
  if (auto ok = check_single_item(cbor); !ok)
    return std::move(ok.error());
  cbor_reader r{cbor};
  auto top = cbor_map::read(r, "HandshakeMessage");
  if (!top)
    return std::move(top.error());
  if (top->entries().size() != 1)
    return top->fail(0, "a handshake message is a one-entry map, found "
                          + std::to_string(top->entries().size()) + " entries");
  return read_body(top->entries().front());
}

} // namespace vox
