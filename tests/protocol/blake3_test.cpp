// BLAKE3 against published digests, the official test-vector inputs and the schema blob.
#include "protocol/blake3.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "protocol/bytes.hpp"

using namespace vox;

namespace {

// The input of the official BLAKE3 test vectors: byte i is i % 251.
byte_buffer official_input(size_t len) {
  byte_buffer data(len);
  for (size_t i = 0; i < len; ++i)
    data[i] = static_cast<uint8_t>(i % 251);
  return data;
}

// Expected digests computed with the independent Python implementation in
// shared/tools/check_vectors.py; they agree with BLAKE3's test_vectors.json.
const std::vector<std::pair<size_t, std::string>> official_vectors = {
    {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
    {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
    {1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
    {1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
    {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
    {2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
    {2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
    {3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"},
    {3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"},
    {4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969"},
    {4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"},
    {5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"},
    {5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff"},
    {6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205"},
    {6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f"},
    {7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a"},
    {7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817"},
    {8192, "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63"},
    {8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
    {16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
    {31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
    {102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
};

std::string hex_of(const blake3_digest& d) {
  return to_hex(byte_span{d.data(), d.size()});
}

} // namespace

TEST_CASE("blake3 of the empty input and of abc match the published digests", "[protocol]") {
  CHECK(hex_of(blake3(std::string_view{})) ==
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  CHECK(hex_of(blake3(byte_span{})) ==
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  CHECK(hex_of(blake3("abc")) == "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
}

TEST_CASE("blake3 matches the official test vectors across chunk and tree boundaries", "[protocol]") {
  for (const auto& [len, want] : official_vectors) {
    INFO("input length " << len);
    auto data = official_input(len);
    CHECK(hex_of(blake3(byte_span{data})) == want);
    blake3_hasher h;
    h.update(byte_span{data});
    CHECK(hex_of(h.finalize()) == want);
  }
}

TEST_CASE("incremental hashing with odd split sizes equals one-shot hashing", "[protocol]") {
  const size_t splits[] = {1, 3, 63, 64, 65, 127, 1000, 1023, 1024, 1025, 4099};
  for (const auto& [len, want] : official_vectors) {
    auto data = official_input(len);
    for (size_t split : splits) {
      INFO("input length " << len << ", split " << split);
      blake3_hasher h;
      for (size_t at = 0; at < data.size(); at += split)
        h.update(byte_span{data}.subspan(at, std::min(split, data.size() - at)));
      CHECK(hex_of(h.finalize()) == want);
    }
  }
}

TEST_CASE("a blake3 hasher keeps accepting input after finalize", "[protocol]") {
  auto data = official_input(2049);
  blake3_hasher h;
  h.update(byte_span{data}.first(1024));
  CHECK(h.finalize() == blake3(byte_span{data}.first(1024)));
  h.update(byte_span{});
  h.update(byte_span{data}.subspan(1024));
  CHECK(hex_of(h.finalize()) == official_vectors[6].second);
}

TEST_CASE("blake3_u64 reads the first eight digest bytes little-endian", "[protocol]") {
  // blake3("abc") starts 64 37 b3 ac 38 46 51 33.
  CHECK(blake3_u64("abc") == 0x33514638acb33764ULL);
  CHECK(blake3_u64("testbed.echo") == 0x880bc4eee23574beULL);
  auto data = official_input(102400);
  auto d = blake3(byte_span{data});
  uint64_t want = 0;
  for (size_t i = 0; i < 8; ++i)
    want |= uint64_t{d[i]} << (8 * i);
  CHECK(blake3_u64(byte_span{data}) == want);
}

TEST_CASE("the MessagePayload schema blob hashes to its reference digest", "[protocol]") {
  std::ifstream in(std::string(VOX_VECTORS_DIR) + "/message-payload-schema.cbor", std::ios::binary);
  REQUIRE(in);
  byte_buffer blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!blob.empty());
  CHECK(hex_of(blake3(byte_span{blob})) ==
        "3af6d4eebbdbb7c8d3d3f27d96cbf7ea8f8004792a16e8d25789b6652b47bdc5");
}
