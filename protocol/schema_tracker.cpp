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

namespace {

/// Appends to `out`, dependencies first, every schema reachable from `ref` that `source`
/// knows and `seen` does not hold yet. Depth is bounded by the number of distinct
/// schemas (each id is entered once), which recv_tracker caps.
void collect(const type_ref& ref, const recv_tracker& source, std::unordered_set<uint64_t>& seen,
             std::vector<schema>& out);

void collect_kind(const schema_kind& k, const recv_tracker& source, std::unordered_set<uint64_t>& seen,
                  std::vector<schema>& out) {
  for (const auto& f : k.fields)
    collect(f.type, source, seen, out);
  for (const auto& v : k.variants) {
    for (const auto& t : v.types)
      collect(t, source, seen, out);
    for (const auto& f : v.fields)
      collect(f.type, source, seen, out);
  }
  for (const auto& e : k.elements)
    collect(e, source, seen, out);
}

void collect(const type_ref& ref, const recv_tracker& source, std::unordered_set<uint64_t>& seen,
             std::vector<schema>& out) {
  if (ref.kind != type_ref::tag::concrete)
    return;
  for (const auto& a : ref.args)
    collect(a, source, seen, out);
  if (!seen.insert(ref.type_id).second)
    return;
  const auto* s = source.find(ref.type_id);
  if (s == nullptr)
    return;
  collect_kind(s->kind, source, seen, out);
  out.push_back(*s);
}

} // namespace

byte_buffer send_tracker::prepare_forwarded(const type_ref& root, const recv_tracker& source) {
  // Already sent ids count as seen: their dependencies went out with them.
  std::unordered_set<uint64_t> seen{sent_.begin(), sent_.end()};
  schema_payload out;
  out.root = root;
  collect(root, source, seen, out.schemas);
  for (const auto& s : out.schemas)
    sent_.insert(s.id);
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
