// The frames a stable conduit sent and the peer has not acknowledged yet.
#pragma once

#include <cstdint>
#include <deque>

#include "protocol/bytes.hpp"

namespace vox {

/// Encoded frames in sequence order, each kept until an ack covers it, so that they can
/// be sent again on the next link (r[stable.replay-buffer]). Its limits do not refuse a
/// frame: `full()` is the signal the sender holds back on (backpressure), since dropping
/// one would lose a Message. Not thread-safe: its owner locks.
class replay_buffer {
public:
  struct limits {
    size_t max_frames = 4096;
    size_t max_bytes = size_t{8} << 20;
  };

  struct entry {
    uint32_t seq = 0;
    byte_buffer frame;
  };

  replay_buffer() = default;
  explicit replay_buffer(limits lim) : limits_(lim) {}

  /// Appends frame `seq` (the next in order after the last one pushed).
  void push(uint32_t seq, byte_buffer frame);
  /// Drops every frame up to and including `max_delivered`, in serial-number order
  /// (r[stable.ack.trim]); an ack for nothing held is a no-op.
  void trim(uint32_t max_delivered);

  /// At or over a limit: the sender should stop taking new Messages until acks come.
  bool full() const { return entries_.size() >= limits_.max_frames || bytes_ >= limits_.max_bytes; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }

  /// In sequence order (r[stable.replay-buffer.order]).
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

private:
  limits limits_;
  std::deque<entry> entries_;
  size_t bytes_ = 0;
};

} // namespace vox
