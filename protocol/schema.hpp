// The schema language of vox (wire-format.md §6): data model, content hashing, CBOR.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "protocol/bytes.hpp"

namespace vox::schema {

/// A reference to a type: a concrete schema id with type arguments, or a type variable.
struct type_ref {
  enum class tag : uint8_t { concrete, var };
  tag kind = tag::concrete;
  uint64_t type_id = 0;        ///< concrete only
  std::vector<type_ref> args;  ///< concrete only; always written, may be empty
  std::string name;            ///< var only
  static type_ref concrete(uint64_t id, std::vector<type_ref> args = {}) {
    return type_ref{tag::concrete, id, std::move(args), {}};
  }
  static type_ref var(std::string name) { return type_ref{tag::var, 0, {}, std::move(name)}; }
  friend bool operator==(const type_ref&, const type_ref&) = default;
};

struct field_schema {
  std::string name;
  type_ref type;
  bool required = true; ///< written to CBOR, not hashed
  friend bool operator==(const field_schema&, const field_schema&) = default;
};

struct variant_schema {
  enum class payload_kind : uint8_t { unit, newtype, tuple, struct_ };
  std::string name;
  uint32_t index = 0;
  payload_kind kind = payload_kind::unit;
  std::vector<type_ref> types;       ///< newtype: exactly one; tuple: the elements
  std::vector<field_schema> fields;  ///< struct_ only
  friend bool operator==(const variant_schema&, const variant_schema&) = default;
};

/// The `kind` of a schema. Which members are used depends on `tag`:
/// struct_: name, fields · enum_: name, variants · tuple: elements ·
/// list / option: elements[0] · map: elements[0] key, elements[1] value ·
/// array: elements[0], length · channel: direction ("tx"|"rx"), elements[0] ·
/// primitive: name (bool u8 … string unit never bytes payload).
struct schema_kind {
  enum class tag : uint8_t { struct_, enum_, tuple, list, map, array, option, channel, primitive };
  tag kind = tag::primitive;
  std::string name;
  std::vector<field_schema> fields;
  std::vector<variant_schema> variants;
  std::vector<type_ref> elements;
  uint64_t length = 0;
  std::string direction;
  friend bool operator==(const schema_kind&, const schema_kind&) = default;
};

struct schema {
  uint64_t id = 0;
  std::vector<std::string> type_params;
  schema_kind kind;
  friend bool operator==(const schema&, const schema&) = default;
};

/// What rides in `RequestCall.schemas` / `RequestResponse.schemas`.
struct schema_payload {
  std::vector<schema> schemas;
  type_ref root;
  friend bool operator==(const schema_payload&, const schema_payload&) = default;
};

/// The content hash (`SchemaHasher`): first 8 bytes of blake3 over the canonical input,
/// little-endian. `type_params` count only for struct and enum kinds.
uint64_t content_hash(const schema_kind& kind, const std::vector<std::string>& type_params);

/// CBOR of a schema list (a CBOR array), as sent in Hello.message_payload_schema.
byte_buffer encode_schema_list(const std::vector<schema>& schemas);
/// CBOR of a SchemaPayload map {"schemas", "root"}.
byte_buffer encode_schema_payload(const schema_payload& payload);

/// Decoders for peer-supplied CBOR: malformed input, excessive nesting or sizes give an error.
caf::expected<std::vector<schema>> decode_schema_list(byte_span cbor);
caf::expected<schema_payload> decode_schema_payload(byte_span cbor);

} // namespace vox::schema
