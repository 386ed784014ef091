// The stable conduit's replay buffer (session-behaviours.md §3.10, RB tests).
#include <catch2/catch.hpp>

#include <vector>

#include "transport/replay_buffer.hpp"

using namespace vox;

namespace {

std::vector<uint32_t> seqs(const replay_buffer& b) {
  std::vector<uint32_t> out;
  for (const auto& e : b)
    out.push_back(e.seq);
  return out;
}

replay_buffer holding(std::vector<uint32_t> seq) {
  replay_buffer b;
  for (auto s : seq)
    b.push(s, byte_buffer(10, static_cast<uint8_t>(s)));
  return b;
}

} // namespace

// r[verify stable.replay-buffer]
// r[verify stable.replay-buffer.order]
// r[verify stable.ack.trim]
TEST_CASE("the replay buffer keeps frames in order and trims what an ack covers", "[transport][stable]") {
  SECTION("push and iterate") { CHECK(seqs(holding({0, 1, 2})) == std::vector<uint32_t>{0, 1, 2}); }
  SECTION("trim removes acknowledged entries") {
    auto b = holding({0, 1, 2, 3, 4});
    b.trim(2);
    CHECK(seqs(b) == std::vector<uint32_t>{3, 4});
    CHECK(b.bytes() == 20);
  }
  SECTION("trim at the exact boundary") {
    auto b = holding({10, 11});
    b.trim(10);
    CHECK(seqs(b) == std::vector<uint32_t>{11});
  }
  SECTION("an ack below everything held is a no-op") {
    auto b = holding({5, 6});
    b.trim(4);
    CHECK(seqs(b) == std::vector<uint32_t>{5, 6});
  }
  SECTION("trim everything") {
    auto b = holding({0, 1, 2, 3});
    b.trim(3);
    CHECK(b.empty());
    CHECK(b.bytes() == 0);
  }
  SECTION("trim on an empty buffer") {
    replay_buffer b;
    b.trim(7);
    CHECK(b.empty());
  }
  SECTION("push after a full trim continues") {
    auto b = holding({0, 1});
    b.trim(1);
    b.push(2, byte_buffer{1});
    CHECK(seqs(b) == std::vector<uint32_t>{2});
  }
  SECTION("across the u32 wrap") {
    auto b = holding({0xfffffffeu, 0xffffffffu, 0, 1});
    b.trim(0xfffffffeu);
    CHECK(seqs(b) == std::vector<uint32_t>{0xffffffffu, 0, 1});
    b.trim(0);
    CHECK(seqs(b) == std::vector<uint32_t>{1});
    b.trim(0xfffffff0u); // an old ack: nothing
    CHECK(seqs(b) == std::vector<uint32_t>{1});
  }
}

TEST_CASE("the replay buffer says full at either limit and never refuses a frame", "[transport][stable]") {
  replay_buffer frames{{3, 1 << 20}};
  frames.push(0, byte_buffer(1));
  frames.push(1, byte_buffer(1));
  CHECK_FALSE(frames.full());
  frames.push(2, byte_buffer(1));
  CHECK(frames.full());
  frames.push(3, byte_buffer(1)); // still kept
  CHECK(frames.size() == 4);
  frames.trim(1);
  CHECK_FALSE(frames.full());
  replay_buffer bytes{{100, 64}};
  bytes.push(0, byte_buffer(40));
  CHECK_FALSE(bytes.full());
  bytes.push(1, byte_buffer(40));
  CHECK(bytes.full());
}
