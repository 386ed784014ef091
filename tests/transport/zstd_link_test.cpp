// zstd-compressed links (README "Compressed links"): one stream per direction, a chunk
// per payload, and a decompressor that trusts nothing.
#include <catch2/catch.hpp>

#include <future>
#include <string>

#include <zstd.h>

#include "protocol/error.hpp"
#include "support/session_fixture.hpp"
#include "support/started_links.hpp"
#include "transport/handshake_exchange.hpp"
#include "transport/memory_link.hpp"
#include "transport/zstd_link.hpp"

using namespace vox;
using namespace vox::test;

namespace {

compression_agreement agreement(uint8_t window_log = 16, int level = 1) {
  return {window_log, window_log, level};
}

std::shared_ptr<zstd_link> zstd_over(link_ptr inner, compression_agreement agreed = agreement()) {
  auto z = zstd_link::make(std::move(inner), agreed);
  REQUIRE(z);
  return *z;
}

/// A Message-like payload: the same field names every time, a counter that changes.
byte_buffer record(int i) {
  auto text = R"({"method":"create_canvas","name":"canvas-)" + std::to_string(i)
              + R"(","shapes":[{"kind":"circle","radius":12.5},{"kind":"point","x":1,"y":2}]})";
  return byte_buffer(text.begin(), text.end());
}

byte_buffer next_payload(vox::link& lnk) {
  auto got = lnk.recv();
  REQUIRE(got);
  REQUIRE(*got);
  return std::move(**got);
}

/// A record of a compressed link: varint(length << 1 | stripped), then `body`.
byte_buffer as_record(byte_span body, bool stripped = false) {
  byte_buffer out;
  uint64_t v = uint64_t{body.size()} << 1 | (stripped ? 1 : 0);
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

/// The body of the record at the start of `bytes` (its varint prefix dropped, as long as
/// the prefix says or as much of it as there is) and whether it is stripped.
std::pair<byte_buffer, bool> record_body(const byte_buffer& bytes) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < bytes.size(); ++i) {
    v |= uint64_t{bytes[i] & 0x7fu} << (7 * i);
    if ((bytes[i] & 0x80) == 0)
      break;
  }
  auto begin = std::min(bytes.size(), i + 1);
  auto end = std::min<uint64_t>(bytes.size(), begin + (v >> 1));
  return {byte_buffer(bytes.begin() + static_cast<std::ptrdiff_t>(begin),
                      bytes.begin() + static_cast<std::ptrdiff_t>(end)),
          (v & 1) != 0};
}

/// The size of the record at the start of `bytes`, prefix included, once it is whole.
std::optional<size_t> whole_record_size(byte_span bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes.size() && i < 5; ++i) {
    v |= uint64_t{bytes[i] & 0x7fu} << (7 * i);
    if ((bytes[i] & 0x80) == 0) {
      auto size = i + 1 + (v >> 1);
      return size <= bytes.size() ? std::optional<size_t>{size} : std::nullopt;
    }
  }
  return std::nullopt;
}

/// What `payload` becomes on the wire after `z` compressed it, read raw from `far`.
byte_buffer chunk_of(zstd_link& z, vox::link& far, const byte_buffer& payload) {
  REQUIRE(z.send(payload));
  return next_payload(far);
}

} // namespace

// r[verify vox-caf.zstd.stream]
TEST_CASE("a zstd link carries payloads both ways, and a payload like an earlier one costs a few bytes",
          "[transport][zstd]") {
  auto [a, b] = make_memory_link_pair();
  auto za = zstd_over(a);
  auto zb = zstd_over(b);
  for (int i = 0; i < 50; ++i) {
    REQUIRE(za->send(record(i)));
    CHECK(next_payload(*zb) == record(i));
    REQUIRE(zb->send(record(1000 + i)));
    CHECK(next_payload(*za) == record(1000 + i));
  }
  // Empty payloads are legal on a link: their chunks are empty, many in a row included.
  byte_buffer empty;
  for (int i = 0; i < 40; ++i) {
    REQUIRE(za->send(empty));
    CHECK(next_payload(*zb).empty());
  }
  REQUIRE(za->send(record(7)));
  CHECK(next_payload(*zb) == record(7));

  // Read raw: the first record carries the frame header and all of its text; later ones
  // refer back into the window the stream keeps across payloads.
  auto [c, d] = make_memory_link_pair();
  auto zc = zstd_over(c);
  auto first = chunk_of(*zc, *d, record(1));
  auto second = chunk_of(*zc, *d, record(2));
  INFO("record " << record(2).size() << " bytes; chunks " << first.size() << " then " << second.size());
  CHECK(first.size() < record(1).size() + 16);
  CHECK(second.size() * 4 < record(2).size());
  // The second chunk alone is not a zstd frame: it only decodes after the first.
  auto [e, f] = make_memory_link_pair();
  auto zf = zstd_over(f);
  REQUIRE(e->send(second));
  auto lone = zf->recv();
  CHECK_FALSE(lone);
}

// r[verify transport.stream]
TEST_CASE("a compressed payload larger than one socket read arrives whole, after smaller ones, in order",
          "[transport][zstd][io]") {
  reactor_fixture fx;
  auto [a, b] = tcp_link_pair();
  auto za = zstd_over(a);
  auto zb = zstd_over(b);
  auto sink = std::make_shared<collector>();
  zb->start(sink, fx.io);
  // Not very compressible: the chunk is several 64 KiB reads long.
  byte_buffer big(1 << 20);
  uint32_t x = 12345;
  for (auto& byte : big) {
    x = x * 1103515245u + 12345u;
    byte = static_cast<uint8_t>(x >> 24);
  }
  std::vector<byte_buffer> sent{record(1), big, record(2), byte_buffer{}, record(3)};
  std::vector<byte_span> spans(sent.begin(), sent.end());
  REQUIRE(za->send_many(std::span<const byte_span>{spans.data(), 2}));
  for (size_t i = 2; i < spans.size(); ++i)
    REQUIRE(za->send(spans[i]));
  REQUIRE(sink->wait_frames(sent.size()));
  CHECK(sink->frames() == sent);
  za->close();
  REQUIRE(sink->wait_end());
  CHECK_FALSE(sink->reason());
}

// r[verify vox-caf.zstd.limits]
TEST_CASE("a compression bomb ends the input with a clear error before its size is allocated",
          "[transport][zstd]") {
  link_options small;
  small.max_frame_size = 64 * 1024;
  auto [a, b] = make_memory_link_pair(small);
  auto za = zstd_over(a);
  auto zb = zstd_over(b);
  // Sixteen MiB of zeros compress to a few hundred bytes, well under the frame limit.
  byte_buffer zeros(16u << 20);
  REQUIRE(za->send(zeros));
  auto got = zb->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::compression_failed));
  CHECK_THAT(describe(got.error()), Catch::Contains("compression bomb") && Catch::Contains("65536"));
  // The inner link is gone with it: the stream cannot go on after a refused chunk.
  CHECK_FALSE(zb->recv());

  // A payload of exactly the limit is fine.
  auto [c, d] = make_memory_link_pair(small);
  auto zc = zstd_over(c);
  auto zd = zstd_over(d);
  byte_buffer most(small.max_frame_size);
  REQUIRE(zc->send(most));
  CHECK(next_payload(*zd) == most);
}

TEST_CASE("a corrupt compressed stream ends a started input with compression_failed", "[transport][zstd]") {
  auto [a, b] = make_memory_link_pair();
  auto zb = zstd_over(b);
  auto sink = std::make_shared<collector>();
  zb->start(sink, nullptr);
  auto garbage = as_record(byte_buffer{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08});
  REQUIRE(a->send(garbage));
  REQUIRE(sink->wait_end());
  CHECK(is(sink->reason(), errc::compression_failed));
  CHECK_THAT(describe(sink->reason()), Catch::Contains("corrupt zstd stream"));
  CHECK(sink->frames().empty());
  CHECK(sink->ends() == 1);
  CHECK(is_decode_error(sink->reason())); // a session answers it with a ProtocolError
  // Nothing after a refused chunk reaches the session.
  REQUIRE(a->send(garbage));
  CHECK(sink->ends() == 1);
  CHECK(sink->frames().empty());
}

TEST_CASE("a chunk that stops inside a zstd block is refused instead of leaking into the next payload",
          "[transport][zstd]") {
  auto [a, b] = make_memory_link_pair();
  auto za = zstd_over(a);
  auto [c, d] = make_memory_link_pair();
  auto zd = zstd_over(d);
  // A whole record from a real stream, its zstd output cut one byte short and its length
  // telling the truth about that.
  REQUIRE(za->send(record(1)));
  auto [body, stripped] = record_body(next_payload(*b));
  REQUIRE_FALSE(stripped); // the first one holds the frame header
  REQUIRE(c->send(as_record(byte_span{body}.first(body.size() - 1))));
  auto got = zd->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::compression_failed));
  CHECK_THAT(describe(got.error()), Catch::Contains("not at a flush boundary"));
}

TEST_CASE("a stream that declares a window above our limit is refused", "[transport][zstd]") {
  auto [a, b] = make_memory_link_pair();
  auto za = zstd_over(a, {22, 22, 1});
  auto zb = zstd_over(b, agreement(16));
  REQUIRE(za->send(record(1)));
  auto got = zb->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::compression_failed));
  CHECK_THAT(describe(got.error()), Catch::Contains("window above our limit"));
}

TEST_CASE("a link's compression contexts stay small with the default window", "[transport][zstd]") {
  auto [a, b] = make_memory_link_pair();
  compression_options defaults;
  compression_agreement agreed{defaults.window_log, defaults.window_log, defaults.level};
  auto za = zstd_over(a, agreed);
  auto zb = zstd_over(b, agreed);
  for (int i = 0; i < 100; ++i) { // both directions, so that all four contexts are in use
    REQUIRE(za->send(record(i)));
    next_payload(*zb);
    REQUIRE(zb->send(record(i)));
    next_payload(*za);
  }
  INFO("one link end's compressor + decompressor: " << za->context_bytes() << " and " << zb->context_bytes()
                                                    << " bytes");
  CHECK(za->context_bytes() < 512 * 1024);
  CHECK(zb->context_bytes() < 512 * 1024);
}

namespace {

struct negotiated {
  caf::expected<handshake_result> initiator = caf::error{};
  caf::expected<handshake_result> acceptor = caf::error{};
};

negotiated negotiate(std::pair<link_ptr, link_ptr> links, compression_mode initiator, compression_mode acceptor) {
  handshake_options i;
  i.compression.mode = initiator;
  handshake_options a;
  a.compression.mode = acceptor;
  a.compression.window_log = 12;
  auto accepted = std::async(std::launch::async, [&] { return handshake_as_acceptor(*links.second, a); });
  negotiated out;
  out.initiator = handshake_as_initiator(*links.first, i);
  if (!out.initiator)
    links.first->abort(); // an acceptor waiting for LetsGo gets end of stream
  out.acceptor = accepted.get();
  return out;
}

} // namespace

// r[verify vox-caf.zstd.negotiation]
TEST_CASE("compression is agreed only when the initiator offers it and the acceptor answers",
          "[transport][zstd][handshake]") {
  using m = compression_mode;
  for (auto [i, a] : {std::pair{m::prefer, m::prefer}, std::pair{m::require, m::prefer},
                      std::pair{m::prefer, m::require}, std::pair{m::require, m::require}}) {
    INFO("initiator " << to_string(i) << ", acceptor " << to_string(a));
    auto r = negotiate(tcp_link_pair(), i, a);
    REQUIRE(r.initiator);
    REQUIRE(r.acceptor);
    REQUIRE(r.initiator->compression);
    REQUIRE(r.acceptor->compression);
    // Each compresses with the smaller window and decodes up to its own.
    CHECK(r.initiator->compression->send_window_log == 12);
    CHECK(r.initiator->compression->recv_window_log_max == 14);
    CHECK(r.acceptor->compression->send_window_log == 12);
    CHECK(r.acceptor->compression->recv_window_log_max == 12);
  }
  for (auto [i, a] : {std::pair{m::off, m::off}, std::pair{m::prefer, m::off}, std::pair{m::off, m::prefer}}) {
    INFO("initiator " << to_string(i) << ", acceptor " << to_string(a));
    auto r = negotiate(tcp_link_pair(), i, a);
    REQUIRE(r.initiator);
    REQUIRE(r.acceptor);
    CHECK_FALSE(r.initiator->compression);
    CHECK_FALSE(r.acceptor->compression);
  }
}

TEST_CASE("requiring compression fails the handshake with an error that names it, on either side",
          "[transport][zstd][handshake]") {
  using m = compression_mode;
  SECTION("an initiator that requires it, against an acceptor that does not compress") {
    auto r = negotiate(tcp_link_pair(), m::require, m::off);
    REQUIRE_FALSE(r.initiator);
    CHECK(is(r.initiator.error(), errc::compression_refused));
    CHECK_THAT(describe(r.initiator.error()), Catch::Contains("zstd compression is required"));
    // The acceptor was told why, instead of LetsGo.
    REQUIRE_FALSE(r.acceptor);
    CHECK_THAT(describe(r.acceptor.error()), Catch::Contains("Sorry") && Catch::Contains("compression"));
  }
  SECTION("an acceptor that requires it, against an initiator that does not offer it") {
    auto r = negotiate(tcp_link_pair(), m::off, m::require);
    REQUIRE_FALSE(r.acceptor);
    CHECK(is(r.acceptor.error(), errc::compression_refused));
    REQUIRE_FALSE(r.initiator);
    CHECK(is(r.initiator.error(), errc::handshake_failed));
    CHECK_THAT(describe(r.initiator.error()), Catch::Contains("requires zstd compression"));
  }
}

TEST_CASE("a memory link never compresses, even when both sides require it", "[transport][zstd][handshake]") {
  auto r = negotiate(make_memory_link_pair(), compression_mode::require, compression_mode::require);
  REQUIRE(r.initiator);
  REQUIRE(r.acceptor);
  CHECK_FALSE(r.initiator->compression);
  CHECK_FALSE(r.acceptor->compression);
}

// r[verify vox-caf.zstd.records]
TEST_CASE("over a socket a compressed link's records go without a u32 prefix, a small one in about ten bytes",
          "[transport][zstd][io]") {
  auto [a, b] = tcp_link_pair();
  auto za = zstd_over(a);
  REQUIRE(b->enter_stream_mode()); // the far end reads the raw bytes
  REQUIRE(za->send(record(1)));
  REQUIRE(za->send(record(2)));
  byte_buffer wire;
  // Until both records are whole.
  auto whole_records = [&] {
    size_t n = 0;
    for (byte_span rest{wire}; auto size = whole_record_size(rest); ++n)
      rest = rest.subspan(*size);
    return n;
  };
  while (whole_records() < 2) {
    auto got = b->recv();
    REQUIRE(got);
    REQUIRE(*got);
    wire.insert(wire.end(), (*got)->begin(), (*got)->end());
  }
  // Two records, the second one a single compressed block without its header.
  auto first = as_record(record_body(wire).first);
  REQUIRE(wire.size() > first.size());
  byte_buffer rest(wire.begin() + static_cast<std::ptrdiff_t>(first.size()), wire.end());
  auto [second, stripped] = record_body(rest);
  INFO("payload " << record(2).size() << " bytes, second record " << rest.size() << " bytes");
  CHECK(stripped);
  CHECK(rest.size() <= 14);

  // A reader gets both back, whatever the cuts between the bytes.
  auto [c, d] = make_memory_link_pair();
  auto zd = zstd_over(d);
  for (auto byte : wire)
    REQUIRE(c->send(byte_span{&byte, 1}));
  CHECK(next_payload(*zd) == record(1));
  CHECK(next_payload(*zd) == record(2));
}

TEST_CASE("a compressed record that claims too much, or a stream that ends inside one, is refused",
          "[transport][zstd]") {
  SECTION("a length beyond any honest record is refused before anything is buffered") {
    auto [a, b] = make_memory_link_pair();
    auto zb = zstd_over(b);
    byte_buffer huge{0xfe, 0xff, 0xff, 0xff, 0x0f}; // 2^31 - 1 bytes, not stripped
    REQUIRE(a->send(huge));
    auto got = zb->recv();
    REQUIRE_FALSE(got);
    CHECK(is(got.error(), errc::compression_failed));
    CHECK_THAT(describe(got.error()), Catch::Contains("longer than any payload"));
  }
  SECTION("a length prefix longer than five bytes") {
    auto [a, b] = make_memory_link_pair();
    auto zb = zstd_over(b);
    REQUIRE(a->send(byte_buffer(6, 0x80)));
    auto got = zb->recv();
    REQUIRE_FALSE(got);
    CHECK_THAT(describe(got.error()), Catch::Contains("longer than 5 bytes"));
  }
  SECTION("an empty stripped record") {
    auto [a, b] = make_memory_link_pair();
    auto zb = zstd_over(b);
    REQUIRE(a->send(byte_buffer{0x01}));
    auto got = zb->recv();
    REQUIRE_FALSE(got);
    CHECK(is(got.error(), errc::compression_failed));
  }
  SECTION("the end of stream inside a record") {
    auto [a, b] = make_memory_link_pair();
    auto zb = zstd_over(b);
    REQUIRE(a->send(byte_buffer{0x20, 0x28, 0xb5})); // 16 bytes announced, 2 sent
    a->close();
    auto got = zb->recv();
    REQUIRE_FALSE(got);
    CHECK_THAT(describe(got.error()), Catch::Contains("ended inside a compressed record"));
  }
}
