#include "transport/socket_link.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <sys/socket.h>
#include <sys/uio.h>

#include "transport/framing.hpp"

namespace vox {

namespace {

/// Bytes read ahead in one syscall, so that a burst of small frames costs one read.
constexpr size_t read_ahead_size = 64 * 1024;

class socket_link final : public link {
public:
  socket_link(unique_fd fd, std::string name, link_options options)
    : fd_(std::move(fd)), name_(std::move(name)), options_(options) {
    // nop
  }

  // The fd is closed only here: closing it while another thread sits in recv could let a
  // new socket reuse the number under that thread's feet.
  ~socket_link() override = default;

  // r[impl transport.stream]
  caf::expected<void> send(byte_span payload) override {
    if (payload.size() > UINT32_MAX)
      return make_error(errc::frame_too_large, "payload of " + std::to_string(payload.size())
                                                 + " bytes does not fit a u32 length");
    auto header = encode_frame_header(static_cast<uint32_t>(payload.size()));
    std::lock_guard<std::mutex> guard{send_mtx_};
    if (send_closed_ || aborted_.load())
      return make_error(errc::closed, name_ + ": send after close or abort");
    if (tx_failure_)
      return tx_failure_;
    iovec iov[2] = {{header.data(), header.size()},
                    {const_cast<uint8_t*>(payload.data()), payload.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = payload.empty() ? 1 : 2;
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
  caf::expected<std::optional<byte_buffer>> recv() override {
    if (aborted_.load())
      return aborted_error();
    if (rx_failure_)
      return rx_failure_;
    uint8_t header[frame_header_size];
    auto got = read_exact(header, frame_header_size);
    if (!got)
      return got.error();
    // r[impl link.rx.eof]
    if (*got == 0)
      return std::optional<byte_buffer>{};
    if (*got < frame_header_size)
      return fail_mid_frame(*got, frame_header_size, "header");
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

  void close() override {
    std::lock_guard<std::mutex> guard{send_mtx_};
    if (send_closed_)
      return;
    send_closed_ = true;
    if (!aborted_.load())
      ::shutdown(fd_.get(), SHUT_WR);
  }

  void abort() override {
    if (aborted_.exchange(true))
      return;
    // Wakes a blocked recv (it reads EOF) and a blocked send (EPIPE); both then see the
    // flag. Not under send_mtx_: abort must not wait for a send stuck on a full socket.
    ::shutdown(fd_.get(), SHUT_RDWR);
  }

  std::string describe() const override {
    return name_;
  }

private:
  caf::error aborted_error() const {
    return make_error(errc::closed, name_ + ": link aborted locally");
  }

  caf::error fail_mid_frame(size_t got, size_t want, const char* part) {
    rx_failure_ = make_error(errc::link_closed, name_ + ": peer closed mid-frame after "
                                                  + std::to_string(got) + " of "
                                                  + std::to_string(want) + " " + part
                                                  + " bytes");
    return rx_failure_;
  }

  /// One `recv` call: the number of bytes read, 0 at end of stream.
  caf::expected<size_t> read_some(uint8_t* dst, size_t n) {
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

  /// Fills `dst` with `n` bytes, from the read-ahead buffer first. Returns how many bytes
  /// were obtained, fewer than `n` only at end of stream.
  caf::expected<size_t> read_exact(uint8_t* dst, size_t n) {
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

  unique_fd fd_;
  const std::string name_;
  const link_options options_;
  std::atomic<bool> aborted_{false};

  // Sending side, guarded by send_mtx_.
  std::mutex send_mtx_;
  bool send_closed_ = false;
  caf::error tx_failure_;

  // Receiving side, touched only by the one thread in recv.
  byte_buffer rx_buf_;
  size_t rx_pos_ = 0;
  size_t rx_end_ = 0;
  caf::error rx_failure_;
};

} // namespace

link_ptr make_socket_link(unique_fd fd, std::string description, link_options options) {
  return std::make_shared<socket_link>(std::move(fd), std::move(description), options);
}

} // namespace vox
