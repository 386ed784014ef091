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

/// Dials an upstream session for one downstream session whose client announced `client`
/// on its root: the upstream session must take the client's parity (ids pass through).
using upstream_dialer = std::function<caf::expected<session_handle>(const connection_settings& client)>;

/// The other way to forward: each session `cfg` accepts gets an upstream session of its
/// own (sets `cfg.customize`, keeping none that was set): its root is spliced to that
/// session's root and each of its virtual connections to one opened there. Dialling
/// blocks (prologue and handshake), so it runs on a detached CAF actor per session while
/// it dials; meanwhile the client's traffic waits in the splices. If dialling fails the
/// downstream session ends. A call the upstream peer makes on its root in the moment
/// before the splice takes it is answered UnknownMethod. Clients are isolated from each
/// other; each costs a TCP connection and a handshake upstream.
void forward_sessions(caf::actor_system& sys, session_server::config& cfg, upstream_dialer dial,
                      std::function<void(const std::string&)> splice_log = {});

} // namespace vox
