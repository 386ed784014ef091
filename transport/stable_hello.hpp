// The stable hellos on a fresh link (wire-format.md §8): after the prologue (mode
// stable) and the CBOR handshake, the initiator sends ClientHello and the acceptor answers
// ServerHello; then the link carries Frames.
#pragma once

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

/// Acceptor, blocking: reads the ClientHello, then as answer_client_hello.
caf::expected<std::shared_ptr<stable_link>> stable_as_acceptor(const link_ptr& raw, stable_options opts = {});

} // namespace vox
