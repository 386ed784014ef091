#include "protocol/error.hpp"

#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace vox {

const char* to_string(errc code) {
  switch (code) {
    case errc::truncated: return "truncated";
    case errc::varint_overflow: return "varint_overflow";
    case errc::invalid_tag: return "invalid_tag";
    case errc::invalid_utf8: return "invalid_utf8";
    case errc::length_limit: return "length_limit";
    case errc::trailing_bytes: return "trailing_bytes";
    case errc::invalid_value: return "invalid_value";
    case errc::cbor_malformed: return "cbor_malformed";
    case errc::prologue_failed: return "prologue_failed";
    case errc::prologue_rejected: return "prologue_rejected";
    case errc::handshake_failed: return "handshake_failed";
    case errc::frame_too_large: return "frame_too_large";
    case errc::link_closed: return "link_closed";
    case errc::io_error: return "io_error";
    case errc::timeout: return "timeout";
    case errc::closed: return "closed";
    case errc::rejected: return "rejected";
    case errc::connection_closed: return "connection_closed";
    case errc::session_shutdown: return "session_shutdown";
    case errc::invalid_request: return "invalid_request";
    case errc::protocol_violation: return "protocol_violation";
    case errc::cancelled: return "cancelled";
    case errc::backpressure: return "backpressure";
    case errc::internal: return "internal";
    case errc::session_lost: return "session_lost";
    case errc::resume_refused: return "resume_refused";
    case errc::compression_refused: return "compression_refused";
    case errc::compression_failed: return "compression_failed";
    case errc::tls_failed: return "tls_failed";
  }
  return "unknown";
}

caf::error make_error(errc code, std::string what) {
  return caf::error{static_cast<uint8_t>(code), vox_error_category,
                    caf::make_message(std::move(what))};
}

bool is(const caf::error& err, errc code) {
  return err && err.category() == vox_error_category && err.code() == static_cast<uint8_t>(code);
}

std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() != vox_error_category)
    return caf::to_string(err);
  std::string out = to_string(static_cast<errc>(err.code()));
  const auto& ctx = err.context();
  if (!ctx.empty() && ctx.match_element<std::string>(0)) {
    out += ": ";
    out += ctx.get_as<std::string>(0);
  }
  return out;
}

} // namespace vox
