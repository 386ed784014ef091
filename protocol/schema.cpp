#include "protocol/schema.hpp"

#include <array>

#include <string_view>

#include "protocol/blake3.hpp"
#include "protocol/cbor.hpp"

namespace vox::schema {

namespace {

using tag = schema_kind::tag;
using payload_kind = variant_schema::payload_kind;

const char* kind_name(tag t) {
  switch (t) {
    case tag::struct_: return "struct";
    case tag::enum_: return "enum";
    case tag::tuple: return "tuple";
    case tag::list: return "list";
    case tag::map: return "map";
    case tag::array: return "array";
    case tag::option: return "option";
    case tag::channel: return "channel";
    case tag::primitive: return "primitive";
  }
  return "primitive";
}

const char* payload_name(payload_kind k) {
  switch (k) {
    case payload_kind::unit: return "unit";
    case payload_kind::newtype: return "newtype";
    case payload_kind::tuple: return "tuple";
    case payload_kind::struct_: return "struct";
  }
  return "unit";
}

// The model stores single-element kinds in `elements`; a hand-built kind may lack them, and
// encoding must not read past the end, so such a slot reads as this placeholder.
const type_ref& element_or_placeholder(const std::vector<type_ref>& v, size_t i) {
  static const type_ref placeholder{};
  return i < v.size() ? v[i] : placeholder;
}

// -- content hash -------------------------------------------------------------

// The canonical hash input of `SchemaHasher` (wire-format.md §6): little-endian integers,
// strings as u32-LE byte length + bytes, streamed straight into BLAKE3.
class hash_input {
public:
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    hasher_.update(s);
  }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void ref(const type_ref& r) {
    if (r.kind == type_ref::tag::var) {
      str("var");
      str(r.name);
      return;
    }
    str("concrete");
    u64(r.type_id);
    // An argument-less reference hashes exactly like a non-generic one.
    if (!r.args.empty()) {
      str("args");
      for (const auto& a : r.args)
        ref(a);
    }
  }
  void field(const field_schema& f) {
    str(f.name); // `required` is deliberately not part of the identity
    ref(f.type);
  }
  uint64_t digest_u64() const { return vox::digest_u64(hasher_.finalize()); }

private:
  void le(uint64_t v, size_t n) {
    std::array<uint8_t, 8> bytes{};
    for (size_t i = 0; i < n; ++i)
      bytes[i] = static_cast<uint8_t>(v >> (8 * i));
    hasher_.update(byte_span{bytes.data(), n});
  }
  blake3_hasher hasher_;
};

// -- encoding -----------------------------------------------------------------

void encode_ref(cbor_writer& w, const type_ref& r) {
  if (r.kind == type_ref::tag::var) {
    w.write_map_header(2);
    w.write_text("tag");
    w.write_text("var");
    w.write_text("name");
    w.write_text(r.name);
    return;
  }
  w.write_map_header(3);
  w.write_text("tag");
  w.write_text("concrete");
  w.write_text("type_id");
  w.write_uint(r.type_id);
  w.write_text("args"); // Rust writes it even when empty; byte identity depends on it
  w.write_array_header(r.args.size());
  for (const auto& a : r.args)
    encode_ref(w, a);
}

void encode_refs(cbor_writer& w, const std::vector<type_ref>& refs) {
  w.write_array_header(refs.size());
  for (const auto& r : refs)
    encode_ref(w, r);
}

void encode_fields(cbor_writer& w, const std::vector<field_schema>& fields) {
  w.write_array_header(fields.size());
  for (const auto& f : fields) {
    w.write_map_header(3);
    w.write_text("name");
    w.write_text(f.name);
    w.write_text("type_ref");
    encode_ref(w, f.type);
    w.write_text("required");
    w.write_bool(f.required);
  }
}

void encode_variant_payload(cbor_writer& w, const variant_schema& v) {
  switch (v.kind) {
    case payload_kind::unit:
      // An internally tagged unit variant is the bare tag text, not a map.
      w.write_text("unit");
      return;
    case payload_kind::newtype:
      w.write_map_header(2);
      w.write_text("tag");
      w.write_text("newtype");
      w.write_text("type_ref");
      encode_ref(w, element_or_placeholder(v.types, 0));
      return;
    case payload_kind::tuple:
      w.write_map_header(2);
      w.write_text("tag");
      w.write_text("tuple");
      w.write_text("types");
      encode_refs(w, v.types);
      return;
    case payload_kind::struct_:
      w.write_map_header(2);
      w.write_text("tag");
      w.write_text("struct");
      w.write_text("fields");
      encode_fields(w, v.fields);
      return;
  }
}

void encode_kind(cbor_writer& w, const schema_kind& k) {
  const auto& e = k.elements;
  // "tag" always comes first: Rust's decoder only recognises it there.
  auto begin = [&](uint64_t body_entries) {
    w.write_map_header(1 + body_entries);
    w.write_text("tag");
    w.write_text(kind_name(k.kind));
  };
  switch (k.kind) {
    case tag::struct_:
      begin(2);
      w.write_text("name");
      w.write_text(k.name);
      w.write_text("fields");
      encode_fields(w, k.fields);
      return;
    case tag::enum_:
      begin(2);
      w.write_text("name");
      w.write_text(k.name);
      w.write_text("variants");
      w.write_array_header(k.variants.size());
      for (const auto& v : k.variants) {
        w.write_map_header(3);
        w.write_text("name");
        w.write_text(v.name);
        w.write_text("index");
        w.write_uint(v.index);
        w.write_text("payload");
        encode_variant_payload(w, v);
      }
      return;
    case tag::tuple:
      begin(1);
      w.write_text("elements");
      encode_refs(w, e);
      return;
    case tag::list:
    case tag::option:
      begin(1);
      w.write_text("element");
      encode_ref(w, element_or_placeholder(e, 0));
      return;
    case tag::map:
      begin(2);
      w.write_text("key");
      encode_ref(w, element_or_placeholder(e, 0));
      w.write_text("value");
      encode_ref(w, element_or_placeholder(e, 1));
      return;
    case tag::array:
      begin(2);
      w.write_text("element");
      encode_ref(w, element_or_placeholder(e, 0));
      w.write_text("length");
      w.write_uint(k.length);
      return;
    case tag::channel:
      begin(2);
      w.write_text("direction");
      w.write_text(k.direction);
      w.write_text("element");
      encode_ref(w, element_or_placeholder(e, 0));
      return;
    case tag::primitive:
      begin(1);
      w.write_text("primitive_type");
      w.write_text(k.name);
      return;
  }
}

void encode_one(cbor_writer& w, const schema& s) {
  w.write_map_header(3);
  w.write_text("id");
  w.write_uint(s.id);
  w.write_text("type_params"); // Rust always writes it, even empty
  w.write_array_header(s.type_params.size());
  for (const auto& p : s.type_params)
    w.write_text(p);
  w.write_text("kind");
  encode_kind(w, s.kind);
}

void encode_list(cbor_writer& w, const std::vector<schema>& schemas) {
  w.write_array_header(schemas.size());
  for (const auto& s : schemas)
    encode_one(w, s);
}

} // namespace

// r[impl schema.type-id]
uint64_t content_hash(const schema_kind& kind, const std::vector<std::string>& type_params) {
  hash_input in;
  const auto& e = kind.elements;
  switch (kind.kind) {
    case tag::primitive:
      in.str(kind.name);
      break;
    case tag::struct_:
    case tag::enum_:
      in.str(kind_name(kind.kind));
      in.str(kind.name);
      in.u32(static_cast<uint32_t>(type_params.size()));
      for (const auto& p : type_params)
        in.str(p);
      if (kind.kind == tag::struct_) {
        for (const auto& f : kind.fields)
          in.field(f);
        break;
      }
      for (const auto& v : kind.variants) {
        in.str(v.name);
        in.u32(v.index);
        in.str(payload_name(v.kind));
        switch (v.kind) {
          case payload_kind::unit:
            break;
          case payload_kind::newtype:
            in.ref(element_or_placeholder(v.types, 0));
            break;
          case payload_kind::tuple:
            for (const auto& t : v.types)
              in.ref(t);
            break;
          case payload_kind::struct_:
            for (const auto& f : v.fields)
              in.field(f);
            break;
        }
      }
      break;
    case tag::tuple:
      in.str("tuple");
      for (const auto& t : e)
        in.ref(t);
      break;
    case tag::list:
    case tag::option:
      in.str(kind_name(kind.kind));
      in.ref(element_or_placeholder(e, 0));
      break;
    case tag::map:
      in.str("map");
      in.ref(element_or_placeholder(e, 0));
      in.ref(element_or_placeholder(e, 1));
      break;
    case tag::array:
      in.str("array");
      in.ref(element_or_placeholder(e, 0));
      in.u64(kind.length);
      break;
    case tag::channel:
      in.str("channel");
      // The CBOR says tx/rx but the hash uses the Rust enum's send/recv spelling.
      in.str(kind.direction == "tx" ? "send" : kind.direction == "rx" ? "recv" : kind.direction);
      in.ref(element_or_placeholder(e, 0));
      break;
  }
  return in.digest_u64();
}

// r[impl schema.cbor]
byte_buffer encode_schema_list(const std::vector<schema>& schemas) {
  byte_buffer out;
  cbor_writer w{out};
  encode_list(w, schemas);
  return out;
}

byte_buffer encode_schema_payload(const schema_payload& payload) {
  byte_buffer out;
  cbor_writer w{out};
  w.write_map_header(2);
  w.write_text("schemas");
  encode_list(w, payload.schemas);
  w.write_text("root");
  encode_ref(w, payload.root);
  return out;
}

} // namespace vox::schema
