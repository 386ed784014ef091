// The bare conduit: one postcard `Message` per link payload (wire-format.md §3).
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include <caf/expected.hpp>

#include "protocol/message.hpp"
#include "transport/link.hpp"

namespace vox {

/// Sends and receives whole `Message`s over a link. Thread-safety is the link's: any
/// thread may send; one thread receives (before `start`; after it the link's receiver does).
///
/// A resumable session outlives its link, so the conduit's link can be taken away
/// (`detach`, when it broke) and replaced (`attach`, on resume). Every attach starts a new
/// *generation*: what was encoded for an earlier link (a Response without the schemas the
/// peer has forgotten since, an item of a channel the resume ended) must not reach the new
/// one, so senders that care name the generation they encoded for and are refused when it
/// is not the current one.
// r[impl conduit.bare]
class bare_conduit {
public:
  explicit bare_conduit(link_ptr link) : link_(std::move(link)) {}

  /// Encodes `msg` and sends it on the current link, whatever its generation (connection
  /// control, Ping/Pong). Fails with `errc::link_closed` while detached. An actor passes
  /// its `context()` as `ctx` (see `link::send`).
  caf::expected<void> send(const message& msg, caf::execution_unit* ctx = nullptr);
  /// Sends only if `generation` is still the current one; `errc::link_closed` otherwise.
  caf::expected<void> send(const message& msg, uint64_t generation, caf::execution_unit* ctx = nullptr);
  /// Encodes and sends several Messages, in order, in as few writes as the link allows,
  /// if `generation` is still the current one.
  caf::expected<void> send_many(std::span<const message> msgs, uint64_t generation,
                                caf::execution_unit* ctx = nullptr);

  /// The next message; `std::nullopt` at a clean end of stream. A payload that does not
  /// decode fails with the decoder's error (a protocol violation by the peer, which
  /// `is_decode_error` recognises); link failures pass through unchanged.
  caf::expected<std::optional<message>> recv();

  /// The current generation (0 for the first link; +1 per attach).
  uint64_t generation() const;
  /// True while a link is attached.
  bool attached() const;
  /// True while the link is congested (see `link::congested`), and while detached: a
  /// sender that holds back for a congested link also holds back for a missing one.
  bool congested() const;
  /// Calls `fn` once the link is not congested (see `link::when_drained`); while
  /// detached, once a link is attached again.
  void when_drained(std::function<void()> fn);

  /// The current link (null while detached).
  link_ptr current() const;
  /// Takes the link away (it broke); sends fail until `attach`. Returns it.
  link_ptr detach();
  /// Makes `lnk` the link of a new generation and returns that generation; callbacks
  /// waiting in `when_drained` while detached run now.
  uint64_t attach(link_ptr lnk);
  /// Closes the current link gracefully (see `link::close`), if there is one.
  void close();

private:
  link_ptr link_for(uint64_t generation) const;

  mutable std::mutex mtx_;
  link_ptr link_;
  uint64_t generation_ = 0;
  std::vector<std::function<void()>> drained_waiters_; ///< registered while detached
};

/// True if `err` says the peer sent bytes that are not a valid Message, or a compressed
/// stream that does not decode (as opposed to the link failing); the session answers
/// those with a ProtocolError.
bool is_decode_error(const caf::error& err);

} // namespace vox
