// vox-bench: the typed-service and channel workloads.
#pragma once

#include "actors/channel.hpp"
#include "actors/service.hpp"
#include "bench/common.hpp"

namespace voxbench {

using bench_echo = vox::method<"echo", std::vector<uint8_t>(std::vector<uint8_t>)>;
using bench_generate = vox::method<"generate", void(uint32_t, vox::tx<int32_t>)>;
/// The typed service every bench server offers besides the raw echo.
using bench_service = vox::service<"Bench", bench_echo, bench_generate>;

/// Serves bench_service; every other method id gets the raw `echo`.
vox::call_handler bench_handler();

/// Typed calls/s (encode args, decode Result) with `depth` in flight.
measurement measure_typed_calls(caf::actor_system& sys, const vox::caller& c, int depth, timing t);

/// Channel items/s, server to client: one generate(n) call, items drained as they come.
measurement measure_channel_items(caf::actor_system& sys, const vox::caller& c, timing t);

/// Channel calls left pending: `generate` calls whose items nobody reads, `per_connection`
/// on each of `callers`. Each server handler has sent its first items and waits for credit.
struct pending_calls {
  std::vector<vox::rx<int32_t>> ends; ///< dropping them lets the calls go
  std::string error;                  ///< empty on success
};
pending_calls start_pending_channel_calls(caf::actor_system& sys, const std::vector<vox::caller>& callers,
                                          size_t per_connection);

} // namespace voxbench
