// Access to the reference's golden vectors (../shared/vectors beside the checkout).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "protocol/bytes.hpp"

namespace vox::test {

/// The vectors directory: $VOX_VECTORS_DIR if set, else the path configured at build time.
inline std::filesystem::path vectors_dir() {
  if (const char* env = std::getenv("VOX_VECTORS_DIR"))
    return env;
  return VOX_VECTORS_DIR;
}

/// The bytes of `relative` (e.g. "wire/message_ping.bin"); empty if the file is missing.
inline byte_buffer read_file(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  return byte_buffer{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

inline byte_buffer read_vector(const std::string& relative) {
  return read_file(vectors_dir() / relative);
}

/// File stems of every *.bin in `folder`, sorted.
inline std::vector<std::string> vector_stems(const std::string& folder) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator{vectors_dir() / folder, ec})
    if (e.path().extension() == ".bin")
      out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace vox::test
