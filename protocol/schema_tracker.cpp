#include "protocol/schema_tracker.hpp"

#include "protocol/error.hpp"

namespace vox::schema {

// r[impl schema.exchange]
byte_buffer send_tracker::prepare(const schema_payload& p) {
  schema_payload out;
  out.root = p.root;
  for (const auto& s : p.schemas)
    if (sent_.insert(s.id).second)
      out.schemas.push_back(s);
  return encode_schema_payload(out);
}

caf::expected<type_ref> recv_tracker::record(byte_span cbor) {
  auto p = decode_schema_payload(cbor);
  if (!p)
    return std::move(p.error());
  for (const auto& s : p->schemas) {
    if (content_hash(s.kind, s.type_params) != s.id)
      return make_error(errc::protocol_violation,
                        "received schema " + std::to_string(s.id) + " does not match its content hash");
    if (known_.count(s.id) > 0)
      return make_error(errc::protocol_violation,
                        "received schema " + std::to_string(s.id) + " twice on one connection");
  }
  // r[impl schema.exchange]
  // The peer cannot make us keep schemas without bound: real services have a few hundred
  // types, so these limits only stop a peer that streams fresh ones forever.
  if (known_.size() + p->schemas.size() > max_schemas || recorded_bytes_ + cbor.size() > max_bytes)
    return make_error(errc::protocol_violation, "more than " + std::to_string(max_schemas) + " schemas or "
                                                  + std::to_string(max_bytes) + " bytes of schemas on one connection");
  recorded_bytes_ += cbor.size();
  for (auto& s : p->schemas) {
    auto id = s.id;
    known_.emplace(id, std::move(s));
  }
  return std::move(p->root);
}

} // namespace vox::schema
