// vox-bench: the vox workloads, each driven by one event-based actor (no scoped_actor in
// a hot path) and bounded by a wall-clock limit.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/handles.hpp"
#include "actors/session_actor.hpp"
#include "bench/common.hpp"

namespace voxbench {

/// Calls/s on `c`'s connection with `depth` calls kept in flight; every reply is checked
/// to be the echo of its 32-byte argument.
measurement measure_calls(caf::actor_system& sys, const vox::caller& c, int depth, timing t);

/// Virtual connections/s opened on `root`'s session (a round trip through the peer's
/// acceptor) and then closed (locally; ConnectionClose goes to the peer), one at a time.
measurement measure_open_close(caf::actor_system& sys, const vox::connection_handle& root, timing t);

/// Opens `n` virtual connections on `root`'s session, at most `depth` opens in flight,
/// and keeps one caller per connection (holding a caller keeps a connection open).
struct open_many_result {
  std::vector<vox::caller> callers; ///< all `n` on success
  double seconds = 0;
  std::string error; ///< empty on success
};
open_many_result open_many(caf::actor_system& sys, const vox::connection_handle& root, size_t n, int depth,
                           std::chrono::seconds limit);

/// Two sessions in this process over a memory link (initiator = `client`).
struct memory_sessions {
  vox::session_handle client;
  vox::session_handle server;
};
caf::expected<memory_sessions> start_memory_sessions(caf::actor_system& sys);

/// Asks a session to end (idempotent; a session that already ended ignores it).
void stop_session(const vox::session_handle& s);

/// A session's snapshot, or nullopt if it did not answer within `limit`.
std::optional<vox::session_info> session_info_of(caf::actor_system& sys, const vox::session_handle& s,
                                                 std::chrono::seconds limit);

} // namespace voxbench
