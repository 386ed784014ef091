// Portable scalar BLAKE3, following the structure of the BLAKE3 reference implementation.
#include "protocol/blake3.hpp"

#include <algorithm>
#include <cstring>

namespace vox {

namespace {

using words = std::array<uint32_t, 8>;

constexpr size_t chunk_len = blake3_hasher::chunk_len;
constexpr size_t block_len = blake3_hasher::block_len;
constexpr uint8_t blocks_per_chunk = chunk_len / block_len;

constexpr uint32_t chunk_start = 1;
constexpr uint32_t chunk_end = 2;
constexpr uint32_t parent = 4;
constexpr uint32_t root = 8;

constexpr words iv = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                      0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

// Message word order for each of the 7 rounds. Precomputing it from the
// permutation avoids shuffling the message between rounds.
constexpr std::array<std::array<uint8_t, 16>, 7> make_schedule() {
  constexpr std::array<uint8_t, 16> perm = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};
  std::array<std::array<uint8_t, 16>, 7> s{};
  for (uint8_t i = 0; i < 16; ++i)
    s[0][i] = i;
  for (size_t r = 1; r < 7; ++r)
    for (size_t i = 0; i < 16; ++i)
      s[r][i] = s[r - 1][perm[i]];
  return s;
}

constexpr auto schedule = make_schedule();

constexpr uint32_t rotr(uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

inline void g(uint32_t* v, int a, int b, int c, int d, uint32_t x, uint32_t y) {
  v[a] = v[a] + v[b] + x;
  v[d] = rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + y;
  v[d] = rotr(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 7);
}

// One round per instantiation: constant schedule indices let the compiler keep the
// message words in registers, which measured clearly faster than looping over it.
template <size_t R>
inline void mix_round(uint32_t* v, const uint32_t* m) {
  constexpr auto& s = schedule[R];
  g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
  g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
  g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
  g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
  g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
  g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
  g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
  g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

// Returns only the first 8 output words: they are the chaining value, and for a
// root node they are exactly the 32 bytes of the default-length digest.
words compress(const words& cv, const uint8_t* block, uint64_t counter, uint32_t len,
               uint32_t flags) {
  uint32_t m[16];
  for (size_t i = 0; i < 16; ++i)
    m[i] = load_le32(block + 4 * i);
  uint32_t v[16] = {cv[0],  cv[1],  cv[2],  cv[3],
                    cv[4],  cv[5],  cv[6],  cv[7],
                    iv[0],  iv[1],  iv[2],  iv[3],
                    static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), len, flags};
  mix_round<0>(v, m);
  mix_round<1>(v, m);
  mix_round<2>(v, m);
  mix_round<3>(v, m);
  mix_round<4>(v, m);
  mix_round<5>(v, m);
  mix_round<6>(v, m);
  words out;
  for (size_t i = 0; i < 8; ++i)
    out[i] = v[i] ^ v[i + 8];
  return out;
}

words parent_cv(const words& left, const words& right, uint32_t extra_flags) {
  uint8_t block[block_len];
  for (size_t i = 0; i < 8; ++i)
    for (size_t j = 0; j < 4; ++j) {
      block[4 * i + j] = static_cast<uint8_t>(left[i] >> (8 * j));
      block[32 + 4 * i + j] = static_cast<uint8_t>(right[i] >> (8 * j));
    }
  return compress(iv, block, 0, block_len, parent | extra_flags);
}

blake3_digest to_digest(const words& w) {
  blake3_digest out;
  for (size_t i = 0; i < 8; ++i)
    for (size_t j = 0; j < 4; ++j)
      out[4 * i + j] = static_cast<uint8_t>(w[i] >> (8 * j));
  return out;
}

// Compresses the final (possibly partial, possibly empty) block of a chunk.
words finish_last_block(const words& cv, const uint8_t* data, size_t len, uint64_t counter,
                        uint32_t flags) {
  uint8_t block[block_len] = {};
  if (len > 0)
    std::memcpy(block, data, len);
  return compress(cv, block, counter, static_cast<uint32_t>(len), flags | chunk_end);
}

} // namespace

blake3_hasher::blake3_hasher() noexcept : chunk_cv_(iv) {
  // nop
}

// Only the last block of the whole input may need ROOT, so a full block is absorbed
// only once more input is known to follow it; the last one always stays buffered.
void blake3_hasher::update(byte_span data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    if (block_used_ == block_len) {
      absorb_block(block_.data());
      block_used_ = 0;
    }
    if (block_used_ == 0) {
      for (; n > block_len; p += block_len, n -= block_len)
        absorb_block(p);
    }
    size_t take = std::min(block_len - block_used_, n);
    std::memcpy(block_.data() + block_used_, p, take);
    block_used_ = static_cast<uint8_t>(block_used_ + take);
    p += take;
    n -= take;
  }
}

void blake3_hasher::update(std::string_view text) {
  update(byte_span{reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

void blake3_hasher::absorb_block(const uint8_t* block) {
  uint32_t flags = blocks_compressed_ == 0 ? chunk_start : 0;
  if (blocks_compressed_ + 1 == blocks_per_chunk) {
    chunk_cv_ = compress(chunk_cv_, block, chunk_counter_, block_len, flags | chunk_end);
    finish_chunk();
  } else {
    chunk_cv_ = compress(chunk_cv_, block, chunk_counter_, block_len, flags);
    ++blocks_compressed_;
  }
}

// The chunk just completed is not the last one, so every subtree it completes is
// final and not the root: merge once per trailing zero bit of the chunk count.
void blake3_hasher::finish_chunk() {
  words cv = chunk_cv_;
  uint64_t total = ++chunk_counter_;
  for (; (total & 1) == 0; total >>= 1)
    cv = parent_cv(cv_stack_[--cv_stack_len_], cv, 0);
  cv_stack_[cv_stack_len_++] = cv;
  chunk_cv_ = iv;
  blocks_compressed_ = 0;
}

blake3_digest blake3_hasher::finalize() const {
  uint32_t flags = blocks_compressed_ == 0 ? chunk_start : 0;
  if (cv_stack_len_ == 0)
    return to_digest(finish_last_block(chunk_cv_, block_.data(), block_used_, chunk_counter_,
                                       flags | root));
  words cv = finish_last_block(chunk_cv_, block_.data(), block_used_, chunk_counter_, flags);
  // Fold the pending subtrees right to left; only the leftmost merge is the root.
  for (size_t i = cv_stack_len_; i-- > 1;)
    cv = parent_cv(cv_stack_[i], cv, 0);
  return to_digest(parent_cv(cv_stack_[0], cv, root));
}

// A single chunk needs no tree, so short inputs such as method names skip
// the hasher and its subtree stack.
blake3_digest blake3(byte_span data) {
  if (data.size() > chunk_len) {
    blake3_hasher h;
    h.update(data);
    return h.finalize();
  }
  words cv = iv;
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint32_t flags = chunk_start;
  for (; n > block_len; p += block_len, n -= block_len, flags = 0)
    cv = compress(cv, p, 0, block_len, flags);
  return to_digest(finish_last_block(cv, p, n, 0, flags | root));
}

blake3_digest blake3(std::string_view text) {
  return blake3(byte_span{reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

uint64_t digest_u64(const blake3_digest& d) {
  uint64_t v = 0;
  for (size_t i = 8; i-- > 0;)
    v = v << 8 | d[i];
  return v;
}

uint64_t blake3_u64(byte_span data) { return digest_u64(blake3(data)); }

uint64_t blake3_u64(std::string_view text) {
  return blake3_u64(byte_span{reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

} // namespace vox
