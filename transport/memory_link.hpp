// In-process links: two connected endpoints backed by queues, for tests and local sessions.
#pragma once

#include <utility>

#include "transport/link.hpp"

namespace vox {

/// Creates two connected in-memory links (r[transport.memory]); what one sends the other
/// receives, in order.
///
/// Each direction is an unbounded queue: `send` copies the payload and never blocks.
/// `close` lets the peer drain what was queued and then see end of stream. `abort` fails
/// our own blocked or later `recv` with `errc::closed`, discards what was queued for us,
/// and lets the peer drain and then see end of stream; the peer's later sends fail with
/// `errc::link_closed`. Destroying an endpoint aborts it.
///
/// For parity with socket links, a payload larger than `options.max_frame_size` is not
/// queued: the receiver's `recv` fails with `errc::frame_too_large` when it reaches it,
/// and every later `recv` fails the same way, as a socket link's would.
std::pair<link_ptr, link_ptr> make_memory_link_pair(link_options options = {});

} // namespace vox
