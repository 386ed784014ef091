// heck-compatible kebab case and the BLAKE3-derived method id.
#include "protocol/method_id.hpp"

#include "protocol/blake3.hpp"

namespace vox {

namespace {

bool is_lower(char c) {
  return c >= 'a' && c <= 'z';
}

bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

char to_lower(char c) {
  return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
}

// What the previous character of the current word was; digits inherit it, which is
// why "abc1Def" splits before 'D' but "ABC1def" does not split at all.
enum class word_mode { boundary, lower, upper };

} // namespace

// r[impl schema.method-id]
std::string kebab_case(std::string_view name) {
  std::string out;
  out.reserve(name.size() + name.size() / 2);
  auto emit = [&](std::string_view word) {
    if (word.empty())
      return;
    if (!out.empty())
      out.push_back('-');
    for (char c : word)
      out.push_back(to_lower(c));
  };
  size_t i = 0;
  while (i < name.size()) {
    // heck splits on !is_alphanumeric; names are ASCII, so other bytes separate words.
    while (i < name.size() && !is_lower(name[i]) && !is_upper(name[i]) && !is_digit(name[i]))
      ++i;
    size_t end = i;
    while (end < name.size() && (is_lower(name[end]) || is_upper(name[end]) || is_digit(name[end])))
      ++end;
    std::string_view part = name.substr(i, end - i);
    size_t init = 0;
    auto mode = word_mode::boundary;
    for (size_t j = 0; j + 1 < part.size(); ++j) {
      char c = part[j];
      char next = part[j + 1];
      auto next_mode = is_lower(c) ? word_mode::lower : is_upper(c) ? word_mode::upper : mode;
      if (next_mode == word_mode::lower && is_upper(next)) {
        emit(part.substr(init, j + 1 - init));
        init = j + 1;
        mode = word_mode::boundary;
      } else if (mode == word_mode::upper && is_upper(c) && is_lower(next)) {
        emit(part.substr(init, j - init));
        init = j;
        mode = word_mode::boundary;
      } else {
        mode = next_mode;
      }
    }
    emit(part.substr(init));
    i = end;
  }
  return out;
}

// r[impl schema.method-id]
uint64_t method_id(std::string_view service, std::string_view method) {
  std::string key = kebab_case(service);
  key.push_back('.');
  key += kebab_case(method);
  return blake3_u64(std::string_view{key});
}

} // namespace vox
