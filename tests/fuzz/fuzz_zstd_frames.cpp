// Compressed link payloads. The low two bits of the first byte pick what the rest is,
// mostly as chunks each with a u16-LE length:
//   0: chunks of a peer's compressed stream (zstd's flushed output, no record header),
//      into one decoder limited to 64 KiB per payload and a 64 KiB window: each decodes
//      to at most the limit, or fails with compression_failed and the stream ends there
//      (never a crash, never more memory);
//   1: payloads, sent through a zstd_link over a memory link and received by another:
//      each arrives exactly as it was sent;
//   2: a peer's byte stream of records (what a compressed socket link carries), cut where
//      the chunks end, into a zstd_record_reader: the same limits as 0, nothing buffered
//      beyond one honest record, and an error is compression_failed and ends the stream;
//   3: a cut size (the next byte, 1..256), then payloads: compressed into records by a
//      zstd_link, the records joined into one byte stream, and that stream fed to a
//      zstd_record_reader in pieces of the cut size: the payloads come out unchanged, in
//      order, and no record is left unfinished.
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

std::shared_ptr<vox::zstd_decoder> make_decoder() {
  auto decoder = vox::zstd_decoder::make(16, limit);
  if (!decoder)
    __builtin_trap();
  return std::make_shared<vox::zstd_decoder>(std::move(*decoder));
}

void peer_stream(const uint8_t* data, size_t size) {
  auto decoder = make_decoder();
  each_chunk(data, size, [&](vox::byte_span chunk) {
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
}

/// A zstd_link over one end of a memory link pair; the other end sees its records.
struct compressing_pair {
  vox::link_ptr near, far;
  std::shared_ptr<vox::zstd_link> zstd;

  compressing_pair() {
    std::tie(near, far) = vox::make_memory_link_pair();
    auto z = vox::zstd_link::make(near, {16, 16, 1});
    if (!z)
      __builtin_trap();
    zstd = std::move(*z);
  }
};

void through_links(const uint8_t* data, size_t size) {
  compressing_pair a;
  auto zb = vox::zstd_link::make(a.far, {16, 16, 1});
  if (!zb)
    __builtin_trap();
  each_chunk(data, size, [&](vox::byte_span payload) {
    if (!a.zstd->send(payload))
      __builtin_trap();
    auto got = (*zb)->recv();
    if (!got || !*got || **got != vox::byte_buffer(payload.begin(), payload.end()))
      __builtin_trap();
    return true;
  });
}

void peer_records(const uint8_t* data, size_t size) {
  vox::zstd_record_reader reader{make_decoder(), limit};
  each_chunk(data, size, [&](vox::byte_span chunk) {
    auto err = reader.feed(chunk, [](vox::byte_span payload) {
      if (payload.size() > limit)
        __builtin_trap();
    });
    if (err && !vox::is(err, vox::errc::compression_failed))
      __builtin_trap();
    return !err;
  });
}

void records_cut_anywhere(const uint8_t* data, size_t size) {
  if (size < 1)
    return;
  size_t cut = size_t{data[0]} + 1;
  compressing_pair a;
  std::vector<vox::byte_buffer> sent;
  vox::byte_buffer stream;
  each_chunk(data + 1, size - 1, [&](vox::byte_span payload) {
    if (!a.zstd->send(payload))
      __builtin_trap();
    auto record = a.far->recv();
    if (!record || !*record)
      __builtin_trap();
    sent.emplace_back(payload.begin(), payload.end());
    stream.insert(stream.end(), (*record)->begin(), (*record)->end());
    return true;
  });
  vox::zstd_record_reader reader{make_decoder(), limit};
  size_t next = 0;
  for (size_t at = 0; at < stream.size(); at += cut) {
    auto piece = vox::byte_span{stream}.subspan(at, std::min(cut, stream.size() - at));
    auto err = reader.feed(piece, [&](vox::byte_span payload) {
      if (next >= sent.size() || sent[next] != vox::byte_buffer(payload.begin(), payload.end()))
        __builtin_trap();
      ++next;
    });
    if (err)
      __builtin_trap();
  }
  if (next != sent.size() || reader.partial())
    __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  switch (data[0] & 3) {
    case 0:
      peer_stream(data + 1, size - 1);
      break;
    case 1:
      through_links(data + 1, size - 1);
      break;
    case 2:
      peer_records(data + 1, size - 1);
      break;
    default:
      records_cut_anywhere(data + 1, size - 1);
      break;
  }
  return 0;
}
