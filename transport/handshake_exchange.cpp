#include "transport/handshake_exchange.hpp"

#include <algorithm>
#include <cerrno>
#include <string>
#include <variant>

#include <sys/random.h>

#include "protocol/error.hpp"
#include "protocol/handshake.hpp"
#include "transport/socket.hpp"

namespace vox {

namespace {

caf::expected<void> send_message(link& lnk, const handshake_message& msg) {
  auto bytes = encode_handshake(msg);
  return lnk.send(bytes);
}

caf::expected<handshake_message> decode_payload(byte_span payload) {
  auto msg = decode_handshake(payload);
  if (!msg)
    return make_error(errc::handshake_failed,
                      "undecodable handshake message: " + describe(msg.error()));
  return msg;
}

/// The next handshake payload; end of stream is an error.
caf::expected<byte_buffer> recv_payload(link& lnk) {
  auto payload = lnk.recv();
  if (!payload)
    return std::move(payload.error());
  if (!*payload)
    return make_error(errc::link_closed, "peer closed during handshake");
  return std::move(**payload);
}

caf::expected<handshake_message> recv_message(link& lnk) {
  auto payload = recv_payload(lnk);
  if (!payload)
    return std::move(payload.error());
  return decode_payload(*payload);
}

// r[impl session.handshake.sorry]
caf::error unexpected(const handshake_message& msg, const char* expected) {
  if (auto s = std::get_if<sorry>(&msg))
    return make_error(errc::handshake_failed, "peer sent Sorry: " + s->reason);
  return make_error(errc::handshake_failed, std::string{"expected "} + expected + ", got "
                                              + handshake_message_name(msg));
}

std::optional<std::array<uint8_t, session_resume_key_size>>
as_session_key(const std::optional<byte_buffer>& key) {
  // Rust's ResumeKeyBytes::to_key ignores keys of any other length.
  if (!key || key->size() != session_resume_key_size)
    return std::nullopt;
  std::array<uint8_t, session_resume_key_size> out;
  std::copy(key->begin(), key->end(), out.begin());
  return out;
}

/// Our window limit for the handshake, or nothing when we do not compress on `lnk`.
std::optional<uint8_t> zstd_offer(const link& lnk, const compression_options& opts) {
  if (opts.mode == compression_mode::off || !lnk.compressible())
    return std::nullopt;
  return opts.window_log;
}

compression_agreement agree(const compression_options& ours, uint8_t peer_window_log_max) {
  return {std::min(ours.window_log, peer_window_log_max), ours.window_log, ours.level};
}

} // namespace

const char* to_string(session_role role) {
  return role == session_role::initiator ? "initiator" : "acceptor";
}

caf::expected<std::array<uint8_t, session_resume_key_size>> make_session_resume_key() {
  std::array<uint8_t, session_resume_key_size> key;
  size_t filled = 0;
  while (filled < key.size()) {
    auto n = ::getrandom(key.data() + filled, key.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return make_system_error(errc::io_error, "getrandom", errno);
    }
    filled += static_cast<size_t>(n);
  }
  return key;
}

// r[impl session.handshake]
caf::expected<handshake_result> handshake_as_initiator(link& lnk, const handshake_options& opts) {
  hello h;
  // Rust fills both parities with the same value; the acceptor reads the top-level one.
  h.parity = opts.settings.parity;
  h.settings = opts.settings;
  h.message_payload_schema = opts.message_payload_schema;
  h.supports_retry = opts.supports_retry;
  h.resume_key = opts.resume_key;
  // r[impl vox-caf.zstd.negotiation]
  h.zstd_window_log_max = zstd_offer(lnk, opts.compression);
  if (auto sent = send_message(lnk, h); !sent)
    return std::move(sent.error());
  auto reply = recv_message(lnk);
  if (!reply)
    return std::move(reply.error());
  auto hy = std::get_if<hello_yourself>(&*reply);
  if (!hy)
    return unexpected(*reply, "HelloYourself or Sorry");
  // An acceptor that answers an offer we did not make has not agreed to anything.
  std::optional<compression_agreement> compression;
  if (h.zstd_window_log_max && hy->zstd_window_log_max)
    compression = agree(opts.compression, *hy->zstd_window_log_max);
  else if (h.zstd_window_log_max && opts.compression.mode == compression_mode::require) {
    (void) send_message(lnk, sorry{"zstd compression is required and the acceptor did not agree to it"});
    return make_error(errc::compression_refused,
                      "zstd compression is required (compression require) but the acceptor did not agree to it");
  }
  // Schemas are not compared before LetsGo: a mismatch surfaces when building the
  // translation plan, as in the reference.
  if (auto sent = send_message(lnk, lets_go{}); !sent)
    return std::move(sent.error());
  handshake_result out;
  out.role = session_role::initiator;
  out.our_settings = opts.settings;
  out.peer_settings = hy->settings;
  out.peer_supports_retry = hy->supports_retry;
  out.session_resume_key = as_session_key(hy->resume_key);
  out.peer_resume_key = std::move(hy->resume_key);
  out.peer_message_payload_schema = std::move(hy->message_payload_schema);
  out.compression = compression;
  return out;
}

// r[impl session.handshake]
caf::expected<handshake_result> handshake_as_acceptor(link& lnk, const handshake_options& opts) {
  auto first = recv_payload(lnk);
  if (!first)
    return std::move(first.error());
  auto out = answer_hello(lnk, *first, opts);
  if (!out)
    return out;
  auto reply = recv_payload(lnk);
  if (!reply)
    return std::move(reply.error());
  if (auto err = expect_lets_go(*reply))
    return err;
  return out;
}

caf::expected<handshake_result> answer_hello(link& lnk, byte_span payload, const handshake_options& opts) {
  auto first = decode_payload(payload);
  if (!first)
    return std::move(first.error());
  auto h = std::get_if<hello>(&*first);
  if (!h)
    return make_error(errc::handshake_failed, std::string{"expected Hello, got "}
                                                + handshake_message_name(*first));
  if (h->resume_key && !(opts.known_resume_key && opts.known_resume_key(*h->resume_key))) {
    // r[impl session.handshake.resume]
    (void) send_message(lnk, sorry{"unknown session resume key"});
    return make_error(errc::resume_refused, "the initiator presented an unknown session resume key");
  }
  auto offer = zstd_offer(lnk, opts.compression);
  if (offer && !h->zstd_window_log_max && opts.compression.mode == compression_mode::require) {
    (void) send_message(lnk, sorry{"this acceptor requires zstd compression, which the Hello did not offer"});
    return make_error(errc::compression_refused,
                      "zstd compression is required (compression require) but the initiator did not offer it");
  }
  handshake_result out;
  out.role = session_role::acceptor;
  out.our_settings = opts.settings;
  // The initiator picks; the configured parity is ignored, as Rust and TS do.
  out.our_settings.parity = opposite(h->parity);
  out.peer_settings = h->settings;
  out.peer_supports_retry = h->supports_retry;
  out.peer_resume_key = std::move(h->resume_key);
  out.peer_message_payload_schema = std::move(h->message_payload_schema);
  hello_yourself hy;
  hy.settings = out.our_settings;
  hy.message_payload_schema = opts.message_payload_schema;
  hy.supports_retry = opts.supports_retry;
  // r[impl vox-caf.zstd.negotiation]
  if (offer && h->zstd_window_log_max) {
    hy.zstd_window_log_max = offer;
    out.compression = agree(opts.compression, *h->zstd_window_log_max);
  }
  if (opts.resumable) {
    // r[impl session.handshake.resume]
    // A fresh key on every handshake, resumes included.
    auto key = make_session_resume_key();
    if (!key)
      return std::move(key.error());
    out.session_resume_key = *key;
    hy.resume_key = byte_buffer(key->begin(), key->end());
  }
  if (auto sent = send_message(lnk, hy); !sent)
    return std::move(sent.error());
  return out;
}

caf::error expect_lets_go(byte_span payload) {
  auto reply = decode_payload(payload);
  if (!reply)
    return std::move(reply.error());
  if (!std::holds_alternative<lets_go>(*reply))
    return unexpected(*reply, "LetsGo or Sorry");
  return {};
}

} // namespace vox
