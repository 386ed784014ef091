#include "transport/replay_buffer.hpp"

#include "protocol/stable_frame.hpp"

namespace vox {

// r[impl stable.replay-buffer]
void replay_buffer::push(uint32_t seq, byte_buffer frame) {
  bytes_ += frame.size();
  entries_.push_back(entry{seq, std::move(frame)});
}

// r[impl stable.ack.trim]
void replay_buffer::trim(uint32_t max_delivered) {
  while (!entries_.empty() && !stable::seq_after(entries_.front().seq, max_delivered)) {
    bytes_ -= entries_.front().frame.size();
    entries_.pop_front();
  }
}

} // namespace vox
