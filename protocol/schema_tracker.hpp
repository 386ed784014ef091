// Per-connection schema bookkeeping (wire-format.md §7): what we have sent, what we received.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"
#include "protocol/schema.hpp"

namespace vox::schema {

class recv_tracker;

/// The sending side of one connection: every type id goes out at most once, counting all
/// methods and both directions (r[schema.exchange]).
class send_tracker {
public:
  /// The CBOR SchemaPayload to attach for `p`: its schemas not sent before on this
  /// connection (in their post-order) and its root. Marks them as sent.
  byte_buffer prepare(const schema_payload& p);

  /// The same for a payload relayed from another connection (a splice): the schemas
  /// reachable from `root` that `source` received and this connection has not been sent
  /// yet, dependencies first. Ids `source` never received are left out, as the reference
  /// does (its receiver then reports them missing).
  byte_buffer prepare_forwarded(const type_ref& root, const recv_tracker& source);

  bool sent(uint64_t type_id) const { return sent_.count(type_id) > 0; }

  /// Forgets everything (a new connection, or a resumed session).
  void reset() { sent_.clear(); }

private:
  std::unordered_set<uint64_t> sent_;
};

/// The receiving side of one connection: records the schemas the peer sent.
class recv_tracker {
public:
  /// Per connection: more schemas, or more CBOR bytes of them, is a protocol error.
  static constexpr size_t max_schemas = 4096;
  static constexpr size_t max_bytes = 4 * 1024 * 1024;

  /// Decodes a received SchemaPayload and records its schemas; returns its root. Malformed
  /// CBOR, a schema whose id is not its content hash, or a type id received before on this
  /// connection is an error (the session answers it with a ProtocolError).
  caf::expected<type_ref> record(byte_span cbor);

  const schema* find(uint64_t type_id) const {
    auto i = known_.find(type_id);
    return i == known_.end() ? nullptr : &i->second;
  }

  size_t size() const { return known_.size(); }
  void reset() {
    known_.clear();
    recorded_bytes_ = 0;
  }

private:
  std::unordered_map<uint64_t, schema> known_;
  size_t recorded_bytes_ = 0;
};

} // namespace vox::schema
