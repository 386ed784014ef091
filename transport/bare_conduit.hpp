// The bare conduit: one postcard `Message` per link payload (wire-format.md §3).
#pragma once

#include <optional>

#include <caf/expected.hpp>

#include "protocol/message.hpp"
#include "transport/link.hpp"

namespace vox {

/// Sends and receives whole `Message`s over a link. Thread-safety is the link's: any
/// thread may send; one thread receives (before `start`; after it the link's receiver does).
// r[impl conduit.bare]
class bare_conduit {
public:
  explicit bare_conduit(link_ptr link) : link_(std::move(link)) {}

  /// Encodes `msg` and sends it as one link payload.
  caf::expected<void> send(const message& msg);
  /// Encodes and sends several Messages, in order, in as few writes as the link allows.
  caf::expected<void> send_many(std::span<const message> msgs);

  /// The next message; `std::nullopt` at a clean end of stream. A payload that does not
  /// decode fails with the decoder's error (a protocol violation by the peer, which
  /// `is_decode_error` recognises); link failures pass through unchanged.
  caf::expected<std::optional<message>> recv();

  link& underlying() { return *link_; }

private:
  link_ptr link_;
};

/// True if `err` says the peer sent bytes that are not a valid Message (as opposed to the
/// link failing); the session answers those with a ProtocolError.
bool is_decode_error(const caf::error& err);

} // namespace vox
