// Compressed link payloads. The first byte picks what the rest is, as chunks each with a
// u16-LE length:
//   0: chunks of a peer's compressed stream, into one decoder limited to 64 KiB per
//      payload and a 64 KiB window: each decodes to at most the limit, or fails with
//      compression_failed and the stream ends there (never a crash, never more memory);
//   1: payloads, sent through a zstd_link over a memory link and received by another:
//      each arrives exactly as it was sent.
#include <cstdint>

#include "protocol/error.hpp"
#include "transport/memory_link.hpp"
#include "transport/zstd_link.hpp"

namespace {

constexpr uint32_t limit = 64 * 1024;

/// Splits `data` into u16-LE length-prefixed chunks (the last one may be short).
template <class F>
void each_chunk(const uint8_t* data, size_t size, F f) {
  while (size >= 2) {
    size_t len = data[0] | size_t{data[1]} << 8;
    data += 2;
    size -= 2;
    len = len < size ? len : size;
    if (!f(vox::byte_span{data, len}))
      return;
    data += len;
    size -= len;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  if (data[0] == 0) {
    auto decoder = vox::zstd_decoder::make(16, limit);
    if (!decoder)
      __builtin_trap();
    each_chunk(data + 1, size - 1, [&](vox::byte_span chunk) {
      auto out = decoder->decode(chunk);
      if (!out) {
        if (!vox::is(out.error(), vox::errc::compression_failed))
          __builtin_trap();
        return false;
      }
      if (out->size() > limit)
        __builtin_trap();
      return true;
    });
    return 0;
  }
  auto [a, b] = vox::make_memory_link_pair();
  auto za = vox::zstd_link::make(a, {16, 16, 1});
  auto zb = vox::zstd_link::make(b, {16, 16, 1});
  if (!za || !zb)
    __builtin_trap();
  each_chunk(data + 1, size - 1, [&](vox::byte_span payload) {
    if (!(*za)->send(payload))
      __builtin_trap();
    auto got = (*zb)->recv();
    if (!got || !*got || **got != vox::byte_buffer(payload.begin(), payload.end()))
      __builtin_trap();
    return true;
  });
  return 0;
}
