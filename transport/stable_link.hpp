// The stable conduit (wire-format.md §8) as a link: the session above sends and receives
// Messages as on any link; underneath, every payload travels in a sequenced Frame that
// is kept until the peer acknowledges it, so that a new transport can take over where a
// broken one stopped.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "protocol/stable_frame.hpp"
#include "transport/link.hpp"
#include "transport/replay_buffer.hpp"

namespace vox {

struct stable_options {
  /// Frames kept for replay; at either limit the link reports itself congested, so
  /// senders that honour backpressure stop until acks come (nothing is dropped).
  replay_buffer::limits replay{};
  /// The sequence number of our first frame (0 as the reference; tests start near 2^32
  /// to cross the wrap).
  uint32_t first_seq = 0;
  /// A receiver with nothing to send still acknowledges, so that a one-way stream does
  /// not fill the sender's replay buffer (the reference acks only on data frames): after
  /// this many frames, or this many item bytes, received since our last outgoing frame,
  /// the link sends an ack-only frame. That frame repeats our last sequence number with
  /// an empty item: a duplicate, which the peer (vox-caf, and the reference Rust and
  /// TypeScript runtimes, which apply a frame's ack before they skip duplicates) drops
  /// after taking its ack. 0 turns a trigger off.
  uint32_t ack_after_frames = 64;
  size_t ack_after_bytes = size_t{256} << 10;
};

/// Wraps the transport `raw` (its prologue, handshake and stable hellos done) in the
/// stable conduit. Thread-safety as any link: any thread sends, the raw link's receiver
/// thread delivers.
// r[impl stable]
class stable_link final : public link, public std::enable_shared_from_this<stable_link> {
public:
  static std::shared_ptr<stable_link> make(link_ptr raw, stable::key key, stable_options opts = {});

  bool congested() const override;
  void when_drained(std::function<void()> fn) override;
  caf::expected<std::optional<byte_buffer>> recv() override;
  void start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) override;
  void close() override;
  void abort() override;
  std::string describe() const override;
  /// The current transport's peer (nothing while disconnected).
  link_peer peer() const override;
  uint32_t max_frame_size() const override { return max_frame_size_; }

  /// For a raw link that is already started (an acceptor that read the hellos from its
  /// events): the receiver that link's frames must go to. `start` then only takes the
  /// session's receiver.
  std::shared_ptr<link_receiver> adopt_started();

  /// Replaces the transport (a reconnect, r[stable.reconnect]): `raw` has exchanged its
  /// hellos; the frames the peer did not receive (after `peer_last_received`) go out on
  /// it again, in order, before anything new. `started`: as for adopt_started. Returns
  /// the receiver for a started `raw`, null otherwise.
  std::shared_ptr<link_receiver> attach(link_ptr raw, std::optional<uint32_t> peer_last_received,
                                        stable::key next_key, bool started = false);

  /// Called, instead of ending the session's input, when the transport ends without a
  /// local close (the owner reconnects, then calls attach). Without one, the end passes up.
  void on_transport_lost(std::function<void(caf::error)> fn);

  /// Ends the session's input with `reason` (no transport came back in time) and closes
  /// the link for good.
  void fail(caf::error reason);
  /// How many transports the link has had (1 + reconnects).
  uint64_t transports() const;

  /// The last sequence number received (what a hello carries), and the key to present.
  std::optional<uint32_t> last_received() const;
  stable::key key() const;
  size_t replay_frames() const;

private:
  caf::expected<void> do_send(byte_span payload, caf::execution_unit* ctx) override;
  caf::expected<void> do_send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx) override;
  class raw_input;
  class call_scope;

  stable_link(link_ptr raw, stable::key key, stable_options opts);

  /// One decoded frame; returns the item to deliver (nullopt: a duplicate) or an error.
  caf::expected<std::optional<byte_span>> accept_frame(const stable::frame_view& frame);
  void frame_from(uint64_t transport, byte_span payload, caf::execution_unit* ctx);
  void end_from(uint64_t transport, caf::error reason, caf::execution_unit* ctx);
  byte_buffer encode_next(byte_span payload);
  /// Counts a delivered item toward the next ack-only frame; true once one is due.
  bool count_for_ack(size_t item_bytes);
  /// Sends the due ack-only frame, unless a data frame carried the ack meanwhile.
  void send_ack();
  /// A frame carrying our current ack went out: the count starts again.
  void ack_went_out();
  /// A local close: a transport that ends now is not lost. Returns the current one.
  link_ptr mark_closed();

  /// The write turn, held while frames go onto the transport so that they go in sequence
  /// order (and a reconnect's replay goes before any new frame). Taken before `mtx_`.
  std::mutex send_mtx_;
  /// The state below. Never held while calling into a transport that may deliver: a memory
  /// link delivers inside send, into the peer's `frame_from`, which takes the peer's `mtx_`;
  /// held across that, two sides sending at once would each wait for the other's.
  mutable std::mutex mtx_;
  link_ptr raw_;
  link_ptr dead_; ///< the transport that ended, until the next one comes
  uint64_t transport_ = 0; ///< +1 per attach: input of an older raw link is ignored
  stable::key key_;
  stable_options opts_;
  uint32_t max_frame_size_; ///< the first transport's: reconnects use the same options
  uint32_t next_seq_;
  bool sent_any_ = false;
  std::optional<uint32_t> last_received_;
  uint32_t unacked_frames_ = 0; ///< delivered since our last frame went out
  size_t unacked_bytes_ = 0;
  bool ack_due_ = false;
  replay_buffer replay_;
  std::vector<std::function<void()>> drained_waiters_; ///< waiting for acks
  std::shared_ptr<link_receiver> upper_;
  std::shared_ptr<io_reactor> io_;
  std::function<void(caf::error)> lost_;
  bool closed_ = false;
  bool failed_ = false;  ///< a bad frame ended the input
  bool adopted_ = false; ///< the raw link was started by whoever handed it over
};

} // namespace vox
