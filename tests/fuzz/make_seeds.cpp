// Writes the seed corpora of tests/fuzz/corpus from the reference vectors and our own
// encoders (not built by default):
//   cmake --build build --target vox-fuzz-seeds
//   build/tests/fuzz/vox-fuzz-seeds tests/fuzz/corpus ../shared/vectors
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <zstd.h>

#include "protocol/handshake.hpp"
#include "protocol/message.hpp"
#include "transport/framing.hpp"
#include "transport/memory_link.hpp"
#include "transport/prologue.hpp"
#include "transport/zstd_link.hpp"

using namespace vox;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& p, const byte_buffer& b) {
  fs::create_directories(p.parent_path());
  std::ofstream out{p, std::ios::binary};
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

byte_buffer read(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  return byte_buffer{std::istreambuf_iterator<char>{in}, {}};
}

void append_framed(byte_buffer& out, byte_span payload) {
  append_frame_header(out, static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3)
    return 2;
  fs::path out = argv[1], vectors = argv[2];
  auto schema = read(vectors / "message-payload-schema.cbor");
  hello h;
  h.settings = {parity::odd, 64};
  h.message_payload_schema = schema;
  hello resuming = h;
  resuming.supports_retry = true;
  resuming.resume_key = byte_buffer(16, 7);
  hello_yourself hy;
  hy.settings = {parity::even, 64};
  hy.message_payload_schema = schema;
  hy.resume_key = byte_buffer(16, 9);
  put(out / "fuzz_handshake/hello", encode_handshake(h));
  put(out / "fuzz_handshake/hello_retry_resume", encode_handshake(resuming));
  put(out / "fuzz_handshake/hello_yourself", encode_handshake(hy));
  put(out / "fuzz_handshake/lets_go", encode_handshake(lets_go{}));
  put(out / "fuzz_handshake/sorry", encode_handshake(sorry{"unknown session resume key"}));
  put(out / "fuzz_handshake/schema_payload", schema);

  std::vector<byte_buffer> messages;
  for (const auto& e : fs::directory_iterator{vectors / "wire"}) {
    messages.push_back(read(e.path()));
    put(out / "fuzz_message" / e.path().filename(), messages.back());
  }

  // A framed TransportHello, then every message framed; for both readers, two chunkings.
  byte_buffer stream;
  auto hello_bytes = encode_prologue_message({transport_hello_magic, transport_prologue_version, 0});
  append_framed(stream, hello_bytes);
  for (const auto& m : messages)
    append_framed(stream, m);
  for (uint8_t mode : {0, 1})
    for (uint8_t chunking : {3, 200}) {
      byte_buffer s;
      s.reserve(2 + stream.size()); // grown in one go: GCC 12 misreads an insert into {a, b}
      s.push_back(mode);
      s.push_back(chunking);
      s.insert(s.end(), stream.begin(), stream.end());
      put(out / "fuzz_prologue_and_framing" / ("stream_" + std::to_string(mode) + "_" + std::to_string(chunking)), s);
    }

  // Each message as one session frame (u16-LE length), all of them in one input, none.
  byte_buffer all;
  for (size_t k = 0; k < messages.size(); ++k) {
    const auto& m = messages[k];
    byte_buffer one;
    one.reserve(2 + m.size());
    one.push_back(static_cast<uint8_t>(m.size()));
    one.push_back(static_cast<uint8_t>(m.size() >> 8));
    one.insert(one.end(), m.begin(), m.end());
    put(out / "fuzz_session" / ("frame_" + std::to_string(k)), one);
    all.insert(all.end(), one.begin(), one.end());
  }
  put(out / "fuzz_session/all_frames", all);
  put(out / "fuzz_session/empty", {});

  // The messages as payloads (mode 1); as zstd's flushed output for each, one stream
  // (mode 0); as the records a zstd_link puts on the wire for them, read raw from the far
  // end of its memory link and joined into one byte stream cut into 100-byte chunks
  // (mode 2); and as payloads whose records are read back in 7-byte pieces (mode 3).
  auto append = [](byte_buffer& to, byte_span b) {
    to.push_back(static_cast<uint8_t>(b.size()));
    to.push_back(static_cast<uint8_t>(b.size() >> 8));
    to.insert(to.end(), b.begin(), b.end());
  };
  byte_buffer plain{1}, chunks{0}, records, cut{3, 6};
  auto [near, far] = make_memory_link_pair();
  auto z = zstd_link::make(near, {16, 16, 1});
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx{ZSTD_createCCtx(), ZSTD_freeCCtx};
  if (!z || !cctx || ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_windowLog, 16)))
    return 1;
  for (const auto& m : messages) {
    append(plain, m);
    append(cut, m);
    if (!(*z)->send(m))
      return 1;
    auto record = far->recv();
    if (!record || !*record)
      return 1;
    records.insert(records.end(), (*record)->begin(), (*record)->end());
    byte_buffer flushed(ZSTD_compressBound(m.size()) + 32);
    ZSTD_inBuffer in{m.data(), m.size(), 0};
    ZSTD_outBuffer dst{flushed.data(), flushed.size(), 0};
    if (ZSTD_isError(ZSTD_compressStream2(cctx.get(), &dst, &in, ZSTD_e_flush)) || in.pos != in.size)
      return 1;
    flushed.resize(dst.pos);
    append(chunks, flushed);
  }
  byte_buffer record_chunks{2};
  for (size_t at = 0; at < records.size(); at += 100)
    append(record_chunks, byte_span{records}.subspan(at, std::min<size_t>(100, records.size() - at)));
  put(out / "fuzz_zstd_frames/payloads", plain);
  put(out / "fuzz_zstd_frames/stream", chunks);
  put(out / "fuzz_zstd_frames/records", record_chunks);
  put(out / "fuzz_zstd_frames/records_cut", cut);
  return 0;
}
