// The socket link before `start`: the transport prologue and the handshake read and write
// on the caller's thread, blocking (with TLS: waiting in poll()).
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>

#include "transport/framing.hpp"
#include "transport/socket_link_impl.hpp"

namespace vox::detail {

namespace {

/// Bytes read ahead in one syscall, so that a burst of small frames costs one read.
constexpr size_t read_ahead_size = 64 * 1024;

} // namespace

caf::expected<void> socket_link::send_blocking(byte_span payload) {
  auto header = encode_frame_header(static_cast<uint32_t>(payload.size()));
  bool framed = !unframed_.load(std::memory_order_acquire);
  if (tls_) {
    // One record for header and payload; only the prologue and handshake come here.
    byte_buffer frame;
    if (framed)
      frame.assign(header.begin(), header.end());
    frame.insert(frame.end(), payload.begin(), payload.end());
    if (auto err = tls_->write_blocking(frame, aborted_)) {
      tx_failure_ = aborted_.load() ? make_error(errc::closed, name_ + ": link aborted during send")
                                    : with_name(std::move(err));
      return tx_failure_;
    }
    return {};
  }
  iovec iov[2] = {{header.data(), header.size()},
                  {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = framed ? iov : iov + 1;
  msg.msg_iovlen = (framed ? 1 : 0) + (payload.empty() ? 0 : 1);
  while (msg.msg_iovlen > 0) {
    auto n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (aborted_.load())
        return make_error(errc::closed, name_ + ": link aborted during send");
      // A partial frame may be on the wire: nothing sent after it could be parsed.
      if (errno == EPIPE || errno == ECONNRESET)
        tx_failure_ = make_system_error(errc::link_closed, name_ + ": peer closed the link",
                                        errno);
      else
        tx_failure_ = make_system_error(errc::io_error, name_ + ": send failed", errno);
      return tx_failure_;
    }
    auto written = static_cast<size_t>(n);
    while (msg.msg_iovlen > 0 && written >= msg.msg_iov->iov_len) {
      written -= msg.msg_iov->iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov->iov_base = static_cast<uint8_t*>(msg.msg_iov->iov_base) + written;
      msg.msg_iov->iov_len -= written;
    }
  }
  return {};
}

// r[impl transport.stream]
caf::expected<std::optional<byte_buffer>> socket_link::recv() {
  if (aborted_.load())
    return aborted_error();
  if (rx_failure_)
    return rx_failure_;
  if (unframed_.load(std::memory_order_acquire))
    return recv_bytes();
  uint8_t header[frame_header_size];
  auto got = read_exact(header, frame_header_size);
  if (!got)
    return got.error();
  // r[impl link.rx.eof]
  if (*got == 0)
    return std::optional<byte_buffer>{};
  if (*got < frame_header_size)
    return fail_mid_frame(*got, frame_header_size, "header");
  if (auto err = check_first_header(header)) {
    rx_failure_ = err;
    return rx_failure_;
  }
  auto len = decode_frame_header(header);
  // Checked before a single byte is allocated for the payload.
  if (auto err = check_frame_size(len, options_.max_frame_size)) {
    rx_failure_ = err;
    return rx_failure_;
  }
  // Grow with what arrives instead of trusting the prefix up front: a peer that
  // announces a large frame and stalls pins at most about twice what it sent.
  byte_buffer payload;
  size_t filled = 0;
  while (filled < len) {
    auto target = std::min<size_t>(len, std::max(filled * 2, read_ahead_size));
    payload.resize(target);
    auto n = read_exact(payload.data() + filled, target - filled);
    if (!n)
      return n.error();
    filled += *n;
    if (filled < target)
      return fail_mid_frame(filled, len, "payload");
  }
  // r[impl link.message.empty]
  return std::optional<byte_buffer>{std::move(payload)};
}

caf::error socket_link::fail_mid_frame(size_t got, size_t want, const char* part) {
  rx_failure_ = make_error(errc::link_closed, name_ + ": peer closed mid-frame after "
                                                + std::to_string(got) + " of "
                                                + std::to_string(want) + " " + part
                                                + " bytes");
  return rx_failure_;
}

caf::expected<size_t> socket_link::read_some(uint8_t* dst, size_t n) {
  if (tls_) {
    auto r = tls_->read_blocking(dst, n, aborted_);
    if (aborted_.load())
      return aborted_error();
    if (!r)
      rx_failure_ = with_name(std::move(r.error()));
    return r ? r : caf::expected<size_t>{rx_failure_};
  }
  for (;;) {
    auto r = ::recv(fd_.get(), dst, n, 0);
    // Checked after every call: data that raced with abort is dropped, as promised.
    if (aborted_.load())
      return aborted_error();
    if (r >= 0)
      return static_cast<size_t>(r);
    if (errno == EINTR)
      continue;
    rx_failure_ = make_system_error(errc::io_error, name_ + ": recv failed", errno);
    return rx_failure_;
  }
}

caf::expected<std::optional<byte_buffer>> socket_link::recv_bytes() {
  if (rx_pos_ < rx_end_) {
    byte_buffer out(rx_buf_.begin() + static_cast<std::ptrdiff_t>(rx_pos_),
                    rx_buf_.begin() + static_cast<std::ptrdiff_t>(rx_end_));
    rx_pos_ = rx_end_ = 0;
    return std::optional<byte_buffer>{std::move(out)};
  }
  byte_buffer out(read_ahead_size);
  auto n = read_some(out.data(), out.size());
  if (!n)
    return n.error();
  if (*n == 0)
    return std::optional<byte_buffer>{};
  out.resize(*n);
  return std::optional<byte_buffer>{std::move(out)};
}

caf::expected<size_t> socket_link::read_exact(uint8_t* dst, size_t n) {
  size_t got = std::min(n, rx_end_ - rx_pos_);
  if (got > 0)
    std::memcpy(dst, rx_buf_.data() + rx_pos_, got);
  rx_pos_ += got;
  while (got < n) {
    if (n - got >= read_ahead_size) {
      // Large remainders go straight into the destination, skipping a copy.
      auto r = read_some(dst + got, n - got);
      if (!r)
        return r.error();
      if (*r == 0)
        return got;
      got += *r;
      continue;
    }
    if (rx_buf_.empty())
      rx_buf_.resize(read_ahead_size);
    auto r = read_some(rx_buf_.data(), rx_buf_.size());
    if (!r)
      return r.error();
    if (*r == 0)
      return got;
    rx_pos_ = 0;
    rx_end_ = *r;
    auto take = std::min(n - got, rx_end_);
    std::memcpy(dst + got, rx_buf_.data(), take);
    rx_pos_ = take;
    got += take;
  }
  return got;
}

} // namespace vox::detail
