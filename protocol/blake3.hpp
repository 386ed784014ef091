// Portable scalar BLAKE3 (hash mode, 32-byte output): the digest behind method ids and schema ids.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/bytes.hpp"

namespace vox {

/// A BLAKE3 digest in its default 32-byte length.
using blake3_digest = std::array<uint8_t, 32>;

/// Incremental BLAKE3 in plain hash mode (no key, no key derivation).
/// Feeding the same bytes in any split yields the same digest as one `blake3` call.
class blake3_hasher {
public:
  /// Bytes in one leaf of the hash tree.
  static constexpr size_t chunk_len = 1024;
  /// Bytes in one compression block.
  static constexpr size_t block_len = 64;

  /// A hasher that has seen no input yet.
  blake3_hasher() noexcept;

  /// Appends `data` to the hashed input.
  void update(byte_span data);

  /// Appends the bytes of `text` (no terminator, no transcoding).
  void update(std::string_view text);

  /// The digest of everything appended so far; the hasher stays usable for more `update`s.
  blake3_digest finalize() const;

private:
  /// Pending subtree roots: inputs stay below 2^64 bytes, i.e. 2^54 chunks.
  static constexpr size_t max_depth = 54;

  using words = std::array<uint32_t, 8>;

  void absorb_block(const uint8_t* block);
  void finish_chunk();

  /// Chaining value of the current chunk after its compressed blocks.
  words chunk_cv_;
  /// Index of the current chunk; also the number of completed chunks.
  uint64_t chunk_counter_ = 0;
  /// The newest block of input, compressed only once more input arrives: the input's
  /// final block must be compressed with CHUNK_END and, for a one-chunk input, ROOT.
  std::array<uint8_t, block_len> block_{};
  uint8_t block_used_ = 0;
  uint8_t blocks_compressed_ = 0;
  /// Roots of complete subtrees, left to right, awaiting a right sibling.
  std::array<words, max_depth> cv_stack_{};
  uint8_t cv_stack_len_ = 0;
};

/// BLAKE3 of `data` (32 bytes).
blake3_digest blake3(byte_span data);

/// BLAKE3 of the bytes of `text`.
blake3_digest blake3(std::string_view text);

/// The first 8 bytes of a digest read as a little-endian u64: the form vox uses for
/// method ids and schema type ids.
uint64_t digest_u64(const blake3_digest& d);

/// `digest_u64` of BLAKE3(`data`).
uint64_t blake3_u64(byte_span data);

/// `blake3_u64` of the bytes of `text`.
uint64_t blake3_u64(std::string_view text);

} // namespace vox
