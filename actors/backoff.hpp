// Attempts with exponential backoff and jitter, on a blocking actor's thread: how a
// session gets a new link after a break (a resume, or a stable conduit's reconnect).
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

#include <caf/blocking_actor.hpp>
#include <caf/error.hpp>
#include <caf/exit_reason.hpp>

namespace vox::detail {

struct backoff_result {
  bool succeeded = false;
  bool stopped = false; ///< an exit message ended the wait
  unsigned attempts = 0;
  caf::error last;
};

/// Calls `attempt()` (a caf::expected<void>) until it succeeds, `final(error)` says no
/// other attempt can change the outcome, `max_attempts` were made or `deadline` passed.
/// Waits between attempts start at `initial` and double up to `max`, each drawn
/// uniformly from [delay/2, delay].
template <class Attempt, class Final>
backoff_result with_backoff(caf::blocking_actor* self, unsigned max_attempts, std::chrono::milliseconds initial,
                            std::chrono::milliseconds max, std::chrono::steady_clock::time_point deadline,
                            Attempt attempt, Final final) {
  std::mt19937_64 rng{std::random_device{}()};
  auto delay = initial;
  backoff_result out;
  while (!out.stopped && out.attempts < max_attempts && std::chrono::steady_clock::now() < deadline) {
    ++out.attempts;
    auto done = attempt();
    if (done) {
      out.succeeded = true;
      return out;
    }
    out.last = std::move(done.error());
    if (final(out.last) || out.attempts == max_attempts)
      break;
    auto ms = std::uniform_int_distribution<int64_t>{delay.count() / 2, delay.count()}(rng);
    auto wait = std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds{ms},
                                                              deadline - std::chrono::steady_clock::now());
    delay = std::min(delay * 2, max);
    if (wait.count() > 0)
      self->receive([&](caf::exit_msg&) { out.stopped = true; },
                    caf::after(std::chrono::duration_cast<std::chrono::microseconds>(wait)) >> [] {});
  }
  return out;
}

} // namespace vox::detail
