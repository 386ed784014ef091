// Small command-line helpers shared by the vox programs: strict option parsing (a typo
// is a usage error, never an exception or a silently truncated number) and waiting for
// SIGTERM/SIGINT without a signal handler.
#pragma once

#include <charconv>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>

#include "actors/handles.hpp"

namespace vox::cli {

/// The value after `--name`, or `fallback`.
std::string arg(int argc, char** argv, const char* name, std::string fallback);

/// True if `--name` appears (an option without a value).
bool flag(int argc, char** argv, const char* name);

/// The whole of `text` as a number in [0, max].
template <class T>
std::optional<T> number(const std::string& text, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || value > max)
    return std::nullopt;
  return value;
}

/// "HOST:PORT" (the last colon splits, so "[::1]"-less IPv6 text like "::1:80" works too).
bool split_address(const std::string& addr, std::string& host, uint16_t& port);

/// Keepalive from `--keepalive MS` (default 10 s: well inside the 30 s after which some
/// peers drop a silent session; the pong timeout is three intervals). Outer nullopt: not
/// a number; inner nullopt: 0, keepalive off.
std::optional<std::optional<keepalive_options>> keepalive(int argc, char** argv,
                                                          const char* fallback = "10000");

/// Blocks SIGTERM and SIGINT in the calling thread. Call it in main() before any thread
/// exists (the actor system's included) so that every thread inherits the mask and the
/// signals wait for `wait_for_stop_signal`.
void block_stop_signals();

/// Waits for SIGTERM or SIGINT (blocked by block_stop_signals): no handler, no lost
/// wake-up between a flag check and pause(), no signal landing on a CAF thread.
int wait_for_stop_signal();

} // namespace vox::cli
