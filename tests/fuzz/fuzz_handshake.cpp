// bytes → CBOR handshake message (Hello, HelloYourself, LetsGo, Sorry) and the schema
// decoders. A decoded handshake re-encodes to bytes that decode to the same encoding.
#include <cstdint>

#include "protocol/handshake.hpp"
#include "protocol/schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vox::byte_span in{data, size};
  if (auto h = vox::decode_handshake(in)) {
    auto bytes = vox::encode_handshake(*h);
    auto again = vox::decode_handshake(bytes);
    if (!again || vox::encode_handshake(*again) != bytes)
      __builtin_trap();
  }
  (void) vox::schema::decode_schema_payload(in);
  (void) vox::schema::decode_schema_list(in);
  return 0;
}
