// bytes → postcard Message → bytes → Message → bytes: a decoded Message re-encodes to
// bytes that decode again, to bytes that are the same.
#include <cstdint>

#include "protocol/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto first = vox::decode_message(vox::byte_span{data, size});
  if (!first)
    return 0;
  auto bytes = vox::encode_message(*first);
  auto second = vox::decode_message(bytes, vox::trailing::reject);
  if (!second)
    __builtin_trap();
  if (vox::encode_message(*second) != bytes)
    __builtin_trap();
  return 0;
}
