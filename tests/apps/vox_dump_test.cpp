// vox-dump, run as a separate process on vectors and on framed captures.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "actors/authorization.hpp"
#include "protocol/handshake.hpp"
#include "protocol/message.hpp"
#include "support/run_command.hpp"
#include "support/vectors.hpp"
#include "transport/framing.hpp"
#include "transport/memory_link.hpp"
#include "transport/prologue.hpp"
#include "transport/zstd_link.hpp"

using namespace vox;

namespace {

vox::test::run_result run_dump(const std::string& args) {
  return vox::test::run_command(VOX_DUMP_PATH, args);
}

/// A file in the temp directory, removed when the test ends.
struct temp_file {
  std::filesystem::path path;
  explicit temp_file(const byte_buffer& data) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path()
           / ("vox-dump-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::ofstream out{path, std::ios::binary};
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  ~temp_file() { std::filesystem::remove(path); }
};

void add_frame(byte_buffer& stream, byte_span payload) {
  append_frame_header(stream, static_cast<uint32_t>(payload.size()));
  stream.insert(stream.end(), payload.begin(), payload.end());
}

/// The start of an initiator's capture: a bare TransportHello, `h`, LetsGo.
byte_buffer capture_start(const hello& h) {
  byte_buffer stream;
  add_frame(stream, encode_prologue_message({transport_hello_magic, transport_prologue_version, 0}));
  add_frame(stream, encode_handshake(h));
  add_frame(stream, encode_handshake(lets_go{}));
  return stream;
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

} // namespace

TEST_CASE("vox-dump prints one line for each wire vector and redacts sensitive metadata", "[apps]") {
  for (const auto& stem : vox::test::vector_stems("wire")) {
    auto path = (vox::test::vectors_dir() / "wire" / (stem + ".bin")).string();
    auto r = run_dump(path);
    INFO(stem << ": " << r.out);
    CHECK(r.status == 0);
    CHECK(count_lines(r.out) == 1);
    CHECK(r.out.find("deadbeef") == std::string::npos);
  }
  auto call = run_dump((vox::test::vectors_dir() / "wire" / "message_request_call.bin").string());
  CHECK(call.out
        == "conn=2 RequestMessage id=11 Call method=0xe5a1d6b2c390f001 meta=[\"trace-id\"=\"abc123\", "
           "\"auth\"(sensitive|no_propagate)=<redacted>, \"attempt\"=2] args=5B schemas=0B\n");
}

TEST_CASE("vox-dump fails with a byte offset on a value that is not a Message", "[apps]") {
  auto r = run_dump((vox::test::vectors_dir() / "primitives" / "u8_0.bin").string());
  CHECK(r.status == 1);
  CHECK(count_lines(r.out) == 1);
  CHECK(r.out.find("at byte 1") != std::string::npos);
}

TEST_CASE("vox-dump decodes a framed capture from the prologue to the messages", "[apps]") {
  hello h;
  h.message_payload_schema = message_schema_cbor();
  auto stream = capture_start(h);
  add_frame(stream, encode_message(message{0, ping{7}}));
  add_frame(stream, encode_message(message{5, connection_close{{{"secret", std::string{"pw"}, 1}}}}));
  temp_file f{stream};
  auto r = run_dump("--framed " + f.path.string());
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out
        == "prologue TransportHello version=9 mode=bare\n"
           "handshake Hello parity=Odd settings.parity=Odd max_concurrent_requests=64 schemas=6569B "
           "supports_retry=false resume_key=none\n"
           "handshake LetsGo\n"
           "conn=0 Ping nonce=7\n"
           "conn=5 ConnectionClose meta=[\"secret\"(sensitive)=<redacted>]\n");
}

TEST_CASE("vox-dump never prints a bearer token, in a call or in an open", "[apps][authorize]") {
  hello h;
  h.message_payload_schema = message_schema_cbor();
  auto stream = capture_start(h);
  auto token = bearer_metadata("tok-7f3a-very-secret");
  add_frame(stream, encode_message(message{0, request_message{1, request_call{42, {token}, payload{0x00}, {}}}}));
  add_frame(stream, encode_message(message{3, connection_open{{parity::odd, 64}, {token}}}));
  temp_file f{stream};
  auto r = run_dump("--framed " + f.path.string());
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out.find("tok-7f3a") == std::string::npos);
  CHECK(count_lines(r.out) == 5);
  CHECK_THAT(r.out, Catch::Contains("\"authorization\"(sensitive|no_propagate)=<redacted>"));
}

TEST_CASE("vox-dump reports where a framed stream breaks", "[apps]") {
  byte_buffer stream;
  add_frame(stream, encode_message(message{0, ping{1}}));
  auto good = stream.size();
  add_frame(stream, byte_buffer{0x00, 0x09});
  temp_file bad_variant{stream};
  auto r = run_dump("--framed " + bad_variant.path.string());
  CHECK(r.status == 1);
  CHECK(r.out.find("conn=0 Ping nonce=1\n") == 0);
  CHECK(r.out.find("byte " + std::to_string(good) + ": frame 1") != std::string::npos);

  stream.resize(good);
  append_frame_header(stream, 100);
  stream.push_back(0);
  temp_file short_frame{stream};
  r = run_dump("--framed " + short_frame.path.string());
  CHECK(r.status == 1);
  CHECK(r.out.find("declares 100 bytes but only 1 remain") != std::string::npos);
}

TEST_CASE("vox-dump reads standard input and rejects bad usage", "[apps]") {
  auto path = (vox::test::vectors_dir() / "wire" / "message_protocol_error.bin").string();
  auto r = run_dump("- < " + path);
  CHECK(r.status == 0);
  CHECK(r.out == "conn=0 ProtocolError description=\"bad frame sequence\"\n");
  CHECK(run_dump("").status == 2);
  CHECK(run_dump("--bogus x").status == 2);
  CHECK(run_dump("/nonexistent/file").status == 1);
}

TEST_CASE("vox-dump --zstd decodes a compressed capture after its plain handshake, and reports a corrupt record",
          "[apps][zstd]") {
  hello h;
  h.zstd_window_log_max = 14;
  auto stream = capture_start(h);
  // The records a zstd_link puts on the wire (after the handshake, unframed on a socket),
  // read raw from the far end of its link.
  auto [near, far] = make_memory_link_pair();
  auto z = zstd_link::make(near, {14, 14, 1});
  REQUIRE(z);
  for (auto& m : {message{0, ping{7}}, message{0, ping{8}},
                  message{5, connection_close{{{"secret", std::string{"pw"}, 1}}}}}) {
    REQUIRE((*z)->send(encode_message(m)));
    auto chunk = far->recv();
    REQUIRE(chunk);
    REQUIRE(*chunk);
    stream.insert(stream.end(), (*chunk)->begin(), (*chunk)->end());
  }
  temp_file f{stream};
  auto r = run_dump("--zstd " + f.path.string());
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(r.out
        == "prologue TransportHello version=9 mode=bare\n"
           "handshake Hello parity=Odd settings.parity=Odd max_concurrent_requests=64 schemas=1B "
           "supports_retry=false resume_key=none zstd_window_log_max=14\n"
           "handshake LetsGo\n"
           "conn=0 Ping nonce=7\n"
           "conn=0 Ping nonce=8\n"
           "conn=5 ConnectionClose meta=[\"secret\"(sensitive)=<redacted>]\n");

  // The same without --zstd cannot read the records; a corrupted record is named, and so
  // is one the capture cuts short.
  CHECK(run_dump("--framed " + f.path.string()).status == 1);
  auto cut = stream;
  stream.back() ^= 0xff;
  temp_file corrupt{stream};
  auto bad = run_dump("--zstd " + corrupt.path.string());
  INFO(bad.out);
  CHECK(bad.status == 1);
  CHECK(bad.out.find("record 2") != std::string::npos);
  cut.pop_back();
  temp_file short_capture{cut};
  auto shorter = run_dump("--zstd " + short_capture.path.string());
  INFO(shorter.out);
  CHECK(shorter.status == 1);
  CHECK(shorter.out.find("record 2 is cut short") != std::string::npos);
}
