#include "transport/framing.hpp"

#include <algorithm>
#include <string>

#include "protocol/error.hpp"

namespace vox {

std::array<uint8_t, frame_header_size> encode_frame_header(uint32_t len) {
  return {static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
          static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 24)};
}

// r[impl transport.stream]
void append_frame_header(byte_buffer& out, uint32_t len) {
  auto header = encode_frame_header(len);
  out.insert(out.end(), header.begin(), header.end());
}

uint32_t decode_frame_header(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8)
         | (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

caf::error check_frame_size(uint64_t len, uint32_t max_frame_size) {
  if (len <= max_frame_size)
    return {};
  return make_error(errc::frame_too_large, "frame of " + std::to_string(len)
                                             + " bytes exceeds the "
                                             + std::to_string(max_frame_size) + "-byte limit");
}

frame_decoder::frame_decoder(uint32_t max_frame_size) : max_frame_size_(max_frame_size) {
  // nop
}

// r[impl transport.stream]
caf::expected<void> frame_decoder::feed(byte_span chunk) {
  if (failure_)
    return failure_;
  while (!chunk.empty()) {
    if (!in_body_) {
      auto take = std::min(frame_header_size - header_fill_, chunk.size());
      std::copy_n(chunk.begin(), take, header_.begin() + header_fill_);
      header_fill_ += take;
      chunk = chunk.subspan(take);
      if (header_fill_ < frame_header_size)
        break;
      header_fill_ = 0;
      body_size_ = decode_frame_header(header_.data());
      if (auto err = check_frame_size(body_size_, max_frame_size_)) {
        failure_ = err;
        return err;
      }
      in_body_ = true;
      body_.clear();
    }
    auto take = std::min<size_t>(body_size_ - body_.size(), chunk.size());
    // Grow with what actually arrived rather than trusting the prefix: a peer that
    // announces a large frame and then stalls should not pin the whole size.
    if (body_.capacity() < body_.size() + take)
      body_.reserve(std::min<size_t>(body_size_, std::max(body_.size() * 2, body_.size() + take)));
    body_.insert(body_.end(), chunk.begin(), chunk.begin() + take);
    chunk = chunk.subspan(take);
    // r[impl link.message.empty]
    if (body_.size() == body_size_) {
      ready_.push_back(std::move(body_));
      body_ = byte_buffer{};
      in_body_ = false;
    }
  }
  return {};
}

std::optional<byte_buffer> frame_decoder::next() {
  if (ready_.empty())
    return std::nullopt;
  auto result = std::move(ready_.front());
  ready_.pop_front();
  return result;
}

} // namespace vox
