#include "apps/cli.hpp"

#include <cstring>
#include <pthread.h>

namespace vox::cli {

std::string arg(int argc, char** argv, const char* name, std::string fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return fallback;
}

bool flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return true;
  return false;
}

bool split_address(const std::string& addr, std::string& host, uint16_t& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  host = addr.substr(0, colon);
  auto p = number<uint16_t>(addr.substr(colon + 1), 65535);
  if (!p)
    return false;
  port = *p;
  return true;
}

std::optional<std::optional<keepalive_options>> keepalive(int argc, char** argv, const char* fallback) {
  auto ms = number<uint32_t>(arg(argc, argv, "--keepalive", fallback), 3'600'000);
  if (!ms)
    return std::nullopt;
  if (*ms == 0)
    return std::optional<keepalive_options>{};
  return keepalive_options{std::chrono::milliseconds{*ms}, std::chrono::milliseconds{3 * int64_t{*ms}}};
}

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

} // namespace

void block_stop_signals() {
  auto set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_stop_signal() {
  auto set = stop_signals();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

} // namespace vox::cli
