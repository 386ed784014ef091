// A session_server that forwards: every connection of every session it accepts is
// spliced (proxy.hpp) to a virtual connection of its own on an upstream session. What
// `vox-gateway` runs; usable in any application that relays vox traffic.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "actors/proxy.hpp"
#include "actors/session_server.hpp"

namespace vox {

/// Where a forwarding server sends a new connection: the live upstream session, or none
/// (the downstream session or connection is then turned away). Called on I/O threads
/// and inside sessions: must not block.
using upstream_source = std::function<std::optional<session_actor>()>;

/// Sets `cfg.on_session` (an existing one still runs, first) and `cfg.options.acceptor`:
/// - a session's root is spliced before the session reads anything, to a new virtual
///   connection upstream that takes the client's parity and max_concurrent_requests;
/// - a virtual connection the client opens is accepted at once and spliced to one
///   opened upstream with the client's settings and the open's metadata without its
///   NO_PROPAGATE entries; if the upstream peer rejects it, the client sees it closed.
/// `splice_log` hears why a splice ended abnormally (default: nowhere).
void forward_connections(caf::actor_system& sys, session_server::config& cfg, upstream_source upstream,
                         std::function<void(const std::string&)> splice_log = {});

} // namespace vox
