// Runs a fuzz target over its corpus without a fuzzing engine: every file (in the
// directories or files named on the command line) goes through LLVMFuzzerTestOneInput
// once. A target reports a finding by trapping, so any failure ends the process.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool run_file(const std::filesystem::path& p) {
  std::ifstream in{p, std::ios::binary};
  if (!in)
    return false;
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>{in}, {}};
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return true;
}

} // namespace

int main(int argc, char** argv) {
  size_t ran = 0;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (std::filesystem::is_directory(argv[i], ec)) {
      for (const auto& e : std::filesystem::directory_iterator{argv[i], ec})
        if (e.is_regular_file() && run_file(e.path()))
          ++ran;
    } else if (run_file(argv[i])) {
      ++ran;
    }
  }
  std::printf("%zu inputs\n", ran);
  return ran > 0 ? 0 : 1; // an empty or missing corpus is a failure, not a pass
}
