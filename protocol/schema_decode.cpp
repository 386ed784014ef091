// Decoding of peer-supplied schema CBOR (wire-format.md §6): the Hello schema list and the
// SchemaPayload of RequestCall/RequestResponse.
#include "protocol/schema.hpp"

#include <array>
#include <limits>
#include <string_view>

#include "protocol/cbor.hpp"
#include "protocol/error.hpp"

namespace vox::schema {

namespace {

// The entry points first run `check_single_item` over the whole input (well-formed, depth
// <= 64, nothing trailing), so the recursive descent below is bounded by that depth.

using tag = schema_kind::tag;
using payload_kind = variant_schema::payload_kind;

constexpr std::array<std::string_view, 19> primitive_names = {
  "bool", "u8",  "u16", "u32",  "u64",    "u128", "i8",    "i16",   "i32",     "i64",
  "i128", "f32", "f64", "char", "string", "unit", "never", "bytes", "payload",
};

template <class T>
using reader_fn = caf::expected<T> (*)(cbor_reader&);

caf::expected<std::string> read_text(cbor_reader& r) {
  return r.read_text();
}

caf::expected<uint64_t> read_u64(cbor_reader& r) {
  return r.read_uint();
}

caf::expected<bool> read_bool(cbor_reader& r) {
  return r.read_bool();
}

template <class T>
caf::expected<std::vector<T>> read_array(cbor_reader& r, reader_fn<T> read_one) {
  auto n = r.read_array_header();
  if (!n)
    return std::move(n.error());
  std::vector<T> out;
  out.reserve(static_cast<size_t>(*n)); // bounded by the remaining input
  for (uint64_t i = 0; i < *n; ++i) {
    auto item = read_one(r);
    if (!item)
      return std::move(item.error());
    out.push_back(std::move(*item));
  }
  return out;
}

caf::expected<type_ref> read_ref(cbor_reader& r);

caf::expected<std::vector<type_ref>> read_refs(cbor_reader& r) {
  return read_array<type_ref>(r, read_ref);
}

caf::expected<type_ref> read_ref(cbor_reader& r) {
  auto m = cbor_map::read(r, "TypeRef");
  if (!m)
    return std::move(m.error());
  auto t = m->get<std::string>("tag", read_text);
  if (!t)
    return std::move(t.error());
  if (*t == "var") {
    auto name = m->get<std::string>("name", read_text);
    if (!name)
      return std::move(name.error());
    return type_ref::var(std::move(*name));
  }
  if (*t != "concrete")
    return m->fail(m->offset(), "unknown TypeRef tag \"" + *t + "\"");
  auto id = m->get<uint64_t>("type_id", read_u64);
  if (!id)
    return std::move(id.error());
  // Rust always writes `args`; an absent list means the same as an empty one.
  auto args = m->get_or<std::vector<type_ref>>("args", {}, read_refs);
  if (!args)
    return std::move(args.error());
  return type_ref::concrete(*id, std::move(*args));
}

caf::expected<field_schema> read_field(cbor_reader& r) {
  auto m = cbor_map::read(r, "FieldSchema");
  if (!m)
    return std::move(m.error());
  field_schema f;
  auto name = m->get<std::string>("name", read_text);
  if (!name)
    return std::move(name.error());
  f.name = std::move(*name);
  auto type = m->get<type_ref>("type_ref", read_ref);
  if (!type)
    return std::move(type.error());
  f.type = std::move(*type);
  // Tolerated when absent: `required` is advisory and not part of the type's identity.
  auto required = m->get_or<bool>("required", true, read_bool);
  if (!required)
    return std::move(required.error());
  f.required = *required;
  return f;
}

caf::expected<std::vector<field_schema>> read_fields(cbor_reader& r) {
  return read_array<field_schema>(r, read_field);
}

caf::expected<void> read_variant_payload(cbor_reader& r, variant_schema& v) {
  auto at = r.absolute_position();
  auto type = r.peek_type();
  if (!type)
    return std::move(type.error());
  if (*type == cbor_type::text_string) { // an internally tagged unit variant: bare text
    auto t = r.read_text();
    if (!t)
      return std::move(t.error());
    if (*t != "unit")
      return make_error(errc::cbor_malformed, "CBOR at byte " + std::to_string(at)
                                                + ": variant payload \"" + *t
                                                + "\" must be a map");
    v.kind = payload_kind::unit;
    return {};
  }
  auto m = cbor_map::read(r, "VariantPayload");
  if (!m)
    return std::move(m.error());
  auto t = m->get<std::string>("tag", read_text);
  if (!t)
    return std::move(t.error());
  if (*t == "unit") {
    v.kind = payload_kind::unit;
  } else if (*t == "newtype") {
    auto type = m->get<type_ref>("type_ref", read_ref);
    if (!type)
      return std::move(type.error());
    v.kind = payload_kind::newtype;
    v.types = {std::move(*type)};
  } else if (*t == "tuple") {
    auto types = m->get<std::vector<type_ref>>("types", read_refs);
    if (!types)
      return std::move(types.error());
    v.kind = payload_kind::tuple;
    v.types = std::move(*types);
  } else if (*t == "struct") {
    auto fields = m->get<std::vector<field_schema>>("fields", read_fields);
    if (!fields)
      return std::move(fields.error());
    v.kind = payload_kind::struct_;
    v.fields = std::move(*fields);
  } else {
    return m->fail(m->offset(), "unknown variant payload tag \"" + *t + "\"");
  }
  return {};
}

caf::expected<variant_schema> read_variant(cbor_reader& r) {
  auto m = cbor_map::read(r, "VariantSchema");
  if (!m)
    return std::move(m.error());
  variant_schema v;
  auto name = m->get<std::string>("name", read_text);
  if (!name)
    return std::move(name.error());
  v.name = std::move(*name);
  auto index = m->get<uint64_t>("index", read_u64);
  if (!index)
    return std::move(index.error());
  if (*index > std::numeric_limits<uint32_t>::max())
    return m->fail(m->offset(), "variant index " + std::to_string(*index) + " exceeds u32");
  v.index = static_cast<uint32_t>(*index);
  auto payload = m->require("payload");
  if (!payload)
    return std::move(payload.error());
  auto pr = (*payload)->reader();
  if (auto ok = read_variant_payload(pr, v); !ok)
    return std::move(ok.error());
  return v;
}

caf::expected<std::vector<variant_schema>> read_variants(cbor_reader& r) {
  return read_array<variant_schema>(r, read_variant);
}

caf::expected<schema_kind> read_kind(cbor_reader& r) {
  auto m = cbor_map::read(r, "SchemaKind");
  if (!m)
    return std::move(m.error());
  auto t = m->get<std::string>("tag", read_text);
  if (!t)
    return std::move(t.error());
  schema_kind k;
  // Appends the TypeRef under `key` to `k.elements`; false (with `err` set) on failure.
  caf::error err;
  auto element = [&](std::string_view key) {
    auto ref = m->get<type_ref>(key, read_ref);
    if (!ref) {
      err = std::move(ref.error());
      return false;
    }
    k.elements.push_back(std::move(*ref));
    return true;
  };
  auto text = [&](std::string_view key, std::string& out) {
    auto value = m->get<std::string>(key, read_text);
    if (!value) {
      err = std::move(value.error());
      return false;
    }
    out = std::move(*value);
    return true;
  };
  if (*t == "struct") {
    k.kind = tag::struct_;
    if (text("name", k.name)) {
      auto fields = m->get<std::vector<field_schema>>("fields", read_fields);
      if (!fields)
        return std::move(fields.error());
      k.fields = std::move(*fields);
    }
  } else if (*t == "enum") {
    k.kind = tag::enum_;
    if (text("name", k.name)) {
      auto variants = m->get<std::vector<variant_schema>>("variants", read_variants);
      if (!variants)
        return std::move(variants.error());
      k.variants = std::move(*variants);
    }
  } else if (*t == "tuple") {
    k.kind = tag::tuple;
    auto elements = m->get<std::vector<type_ref>>("elements", read_refs);
    if (!elements)
      return std::move(elements.error());
    k.elements = std::move(*elements);
  } else if (*t == "list" || *t == "option") {
    k.kind = *t == "list" ? tag::list : tag::option;
    element("element");
  } else if (*t == "map") {
    k.kind = tag::map;
    if (element("key"))
      element("value");
  } else if (*t == "array") {
    k.kind = tag::array;
    if (element("element")) {
      auto length = m->get<uint64_t>("length", read_u64);
      if (!length)
        return std::move(length.error());
      k.length = *length;
    }
  } else if (*t == "channel") {
    k.kind = tag::channel;
    if (text("direction", k.direction) && element("element")
        && k.direction != "tx" && k.direction != "rx")
      return m->fail(m->offset(), "channel direction \"" + k.direction + "\" is not tx or rx");
  } else if (*t == "primitive") {
    k.kind = tag::primitive;
    if (text("primitive_type", k.name)) {
      bool known = false;
      for (auto name : primitive_names)
        known = known || name == k.name;
      if (!known)
        return m->fail(m->offset(), "unknown primitive type \"" + k.name + "\"");
    }
  } else {
    return m->fail(m->offset(), "unknown schema kind \"" + *t + "\"");
  }
  if (err)
    return err;
  return k;
}

caf::expected<schema> read_schema(cbor_reader& r) {
  auto m = cbor_map::read(r, "Schema");
  if (!m)
    return std::move(m.error());
  schema s;
  auto id = m->get<uint64_t>("id", read_u64);
  if (!id)
    return std::move(id.error());
  s.id = *id;
  // TypeScript omits an empty list; Rust defaults it.
  auto params = m->get_or<std::vector<std::string>>("type_params", {}, [](cbor_reader& pr) {
    return read_array<std::string>(pr, read_text);
  });
  if (!params)
    return std::move(params.error());
  s.type_params = std::move(*params);
  auto kind = m->get<schema_kind>("kind", read_kind);
  if (!kind)
    return std::move(kind.error());
  s.kind = std::move(*kind);
  return s;
}

caf::expected<std::vector<schema>> read_schemas(cbor_reader& r) {
  return read_array<schema>(r, read_schema);
}

} // namespace

// r[impl schema.cbor]
caf::expected<std::vector<schema>> decode_schema_list(byte_span cbor) {
  if (auto ok = check_single_item(cbor); !ok)
    return std::move(ok.error());
  cbor_reader r{cbor};
  return read_schemas(r);
}

caf::expected<schema_payload> decode_schema_payload(byte_span cbor) {
  if (auto ok = check_single_item(cbor); !ok)
    return std::move(ok.error());
  cbor_reader r{cbor};
  auto m = cbor_map::read(r, "SchemaPayload");
  if (!m)
    return std::move(m.error());
  schema_payload out;
  auto schemas = m->get<std::vector<schema>>("schemas", read_schemas);
  if (!schemas)
    return std::move(schemas.error());
  out.schemas = std::move(*schemas);
  auto root = m->get<type_ref>("root", read_ref);
  if (!root)
    return std::move(root.error());
  out.root = std::move(*root);
  return out;
}

} // namespace vox::schema
