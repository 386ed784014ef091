// The stable hellos on a fresh link (wire-format.md §8): after the prologue (mode
// stable) and the CBOR handshake, the initiator sends ClientHello and the acceptor answers
// ServerHello; then the link carries Frames.
#pragma once

#include <functional>
#include <memory>

#include <caf/expected.hpp>

#include "transport/stable_link.hpp"

namespace vox {

/// Initiator, blocking: a fresh ClientHello, then the acceptor's ServerHello. Fails with
/// errc::session_lost on REJECTED (r[stable.reconnect.failure]), errc::handshake_failed on a
/// malformed hello, or the link's error.
// r[impl stable.handshake]
caf::expected<std::shared_ptr<stable_link>> stable_as_initiator(const link_ptr& raw, stable_options opts = {});

/// Acceptor, for a ClientHello that has arrived: answers a fresh one with a ServerHello
/// carrying a new key, and returns the stable link over `raw`. A ClientHello that presents
/// a key (a reconnect) is answered REJECTED here: it belongs to a conduit this link did
/// not start (see stable_as_acceptor's caller for routing), and fails with
/// errc::session_lost.
caf::expected<std::shared_ptr<stable_link>> answer_client_hello(const link_ptr& raw, byte_span payload,
                                                                stable_options opts = {});

/// Initiator, blocking, on a new transport `raw` whose prologue (mode stable) is done: a
/// ClientHello with `s`'s key and what it received, the ServerHello, then `s` takes `raw`
/// and replays what the acceptor did not receive (r[stable.reconnect.client-replay]).
/// REJECTED fails with errc::session_lost.
caf::expected<void> stable_reconnect_as_initiator(const std::shared_ptr<stable_link>& s, const link_ptr& raw);

/// Acceptor, for a ClientHello that presents a key: the conduit `find(key)` gives (none:
/// answered REJECTED, errc::session_lost) takes the started transport `raw` under a fresh
/// key, answers ServerHello with what it received, and replays what the initiator did not
/// (r[stable.reconnect.server-replay]). Returns the receiver `raw`'s frames must go to.
struct stable_reconnected {
  std::shared_ptr<stable_link> conduit;
  std::shared_ptr<link_receiver> input;
  stable::key old_key;
};
caf::expected<stable_reconnected>
answer_reconnect_hello(const link_ptr& raw, byte_span payload,
                       const std::function<std::shared_ptr<stable_link>(const stable::key&)>& find);

/// Acceptor, blocking: reads the ClientHello, then as answer_client_hello.
caf::expected<std::shared_ptr<stable_link>> stable_as_acceptor(const link_ptr& raw, stable_options opts = {});

} // namespace vox
