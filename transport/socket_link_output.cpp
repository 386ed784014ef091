// The socket link's output once started: frames queue in a bounded buffer and whichever
// thread holds the write turn writes them, batched; a full socket hands the turn to the
// I/O loop.
#include <cerrno>

#include <sys/socket.h>

#include "transport/framing.hpp"
#include "transport/socket_link_impl.hpp"

namespace vox::detail {

caf::expected<void> socket_link::enqueue(byte_span payload, std::unique_lock<std::mutex>& guard) {
  if (auto queued = append_locked(payload); !queued)
    return queued;
  return take_write_turn(guard);
}

caf::expected<void> socket_link::append_locked(byte_span payload) {
  if (tx_failure_)
    return tx_failure_;
  bool framed = !unframed_.load(std::memory_order_relaxed); // written under send_mtx_ too
  auto size = (framed ? frame_header_size : 0) + payload.size();
  if (queued_bytes_ + size > options_.max_outbound_bytes) {
    fail_locked(make_error(errc::backpressure, name_ + ": the peer is not reading: "
                                                 + std::to_string(queued_bytes_) + " bytes queued, limit "
                                                 + std::to_string(options_.max_outbound_bytes)));
    return tx_failure_;
  }
  if (framed)
    append_frame_header(out_, static_cast<uint32_t>(payload.size()));
  out_.insert(out_.end(), payload.begin(), payload.end());
  queued_bytes_ += size;
  if (queued_bytes_ > options_.high_water_bytes)
    congested_.store(true, std::memory_order_release);
  return {};
}

caf::expected<void> socket_link::take_write_turn(std::unique_lock<std::mutex>& guard) {
  if (writing_)
    return {};
  writing_ = true;
  flush(guard);
  if (tx_failure_)
    return tx_failure_;
  return {};
}

void socket_link::flush(std::unique_lock<std::mutex>& guard) {
  for (;;) {
    if (inflight_pos_ == inflight_.size() && !refill(guard)) {
      writing_ = false;
      armed_ = false;
      if (send_closed_)
        shut_write_locked();
      sync_interest_locked();
      return;
    }
    auto* data = inflight_.data() + inflight_pos_;
    auto len = inflight_.size() - inflight_pos_;
    guard.unlock();
    auto n = ::send(fd_.get(), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    auto err = errno;
    guard.lock();
    if (n > 0) {
      inflight_pos_ += static_cast<size_t>(n);
      queued_bytes_ -= static_cast<size_t>(n);
      if (armed_) // only a stalled write is timed; the common direct write reads no clock
        last_progress_ = std::chrono::steady_clock::now();
      if (queued_bytes_ <= options_.low_water_bytes)
        release_drained_locked();
      if (inflight_pos_ == inflight_.size()) {
        if (inflight_.capacity() > 256 * 1024)
          byte_buffer{}.swap(inflight_); // a burst is over: do not keep its buffer
        inflight_.clear();
        inflight_pos_ = 0;
      }
      continue;
    }
    if (n < 0 && err == EINTR)
      continue;
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
      if (!armed_) {
        armed_ = true;
        last_progress_ = std::chrono::steady_clock::now();
      }
      sync_interest_locked(); // the loop holds the turn from here
      return;
    }
    if (aborted_.load()) {
      tx_failure_ = make_error(errc::closed, name_ + ": link aborted during send");
    } else if (err == EPIPE || err == ECONNRESET) {
      tx_failure_ = make_system_error(errc::link_closed, name_ + ": peer closed the link", err);
    } else {
      tx_failure_ = make_system_error(errc::io_error, name_ + ": send failed", err);
    }
    fail_locked(tx_failure_);
  }
}

void socket_link::on_writable() {
  std::unique_lock<std::mutex> guard{send_mtx_};
  if (writing_ && armed_)
    flush(guard);
}

bool socket_link::refill(std::unique_lock<std::mutex>& guard) {
  if (tx_failure_ || aborted_.load())
    return false;
  inflight_pos_ = 0;
  if (!tls_) {
    if (out_.empty())
      return false;
    inflight_.swap(out_);
    out_.clear();
    return true;
  }
  if (out_.empty() && !tls_output_waiting_)
    return false;
  tls_output_waiting_ = false;
  byte_buffer plain;
  plain.swap(out_);
  byte_buffer cipher;
  cipher.swap(spare_);
  guard.unlock();
  auto done = tls_->encrypt(plain, cipher);
  guard.lock();
  if (!done) {
    fail_locked(with_name(std::move(done.error())));
    return false;
  }
  if (tx_failure_ || aborted_.load())
    return false;
  // The queue's bound counts what will cross the socket: ciphertext from here on.
  queued_bytes_ += cipher.size();
  if (*done) {
    queued_bytes_ -= plain.size();
    plain.clear();
    if (out_.empty())
      out_.swap(plain); // keep the queue's storage
  } else { // the frames wait for the handshake, whose completion sets tls_output_waiting_
    plain.insert(plain.end(), out_.begin(), out_.end());
    out_.swap(plain);
  }
  inflight_.swap(cipher);
  cipher.clear();
  if (cipher.capacity() <= 256 * 1024)
    spare_.swap(cipher); // the last batch's storage, for the next one
  return !inflight_.empty();
}

caf::error socket_link::with_name(caf::error err) const {
  if (!err || err.category() != vox_error_category)
    return err;
  auto what = vox::describe(err); // "code: description"
  auto colon = what.find(": ");
  return make_error(static_cast<errc>(err.code()),
                    name_ + ": " + (colon == std::string::npos ? what : what.substr(colon + 2)));
}

void socket_link::fail_locked(caf::error reason) {
  if (!tx_failure_)
    tx_failure_ = reason;
  if (!end_reason_)
    end_reason_ = std::move(reason);
  // Nothing queued can go out any more; a write turn in progress sees an empty queue
  // and ends instead of retrying the failed send.
  out_.clear();
  inflight_.clear();
  inflight_pos_ = 0;
  queued_bytes_ = 0;
  release_drained_locked(); // they learn of the failure from their next send
  if (!aborted_.exchange(true))
    ::shutdown(fd_.get(), SHUT_RDWR);
  sync_interest_locked();
}

void socket_link::release_drained_locked() {
  if (!congested_.load(std::memory_order_relaxed))
    return;
  congested_.store(false, std::memory_order_release);
  auto waiting = std::move(drained_);
  drained_.clear();
  for (auto& fn : waiting)
    fn();
}

void socket_link::shut_write_locked() {
  if (!write_shut_ && !aborted_.load()) {
    if (tls_) { // the queue is empty: the alert goes out in order, best effort
      byte_buffer alert;
      tls_->close_notify(alert);
      [[maybe_unused]] auto n = ::send(fd_.get(), alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ::shutdown(fd_.get(), SHUT_WR);
  }
  write_shut_ = true;
  // What is left is waiting for the peer's EOF (so that unread input does not reset the
  // connection): worth doing while the reactor runs for others, not a reason to keep its
  // threads, and with them the actor system's shutdown, waiting. Let go on the loop's
  // thread: a last reference dropped here, under send_mtx_, would join that thread.
  if (reactor_)
    loop_->post([io = std::move(reactor_)] {});
}

void socket_link::sync_interest_locked() {
  if (!loop_ || removed_)
    return;
  bool want_out = writing_ && armed_ && !aborted_.load();
  bool watch = want_out || (send_closed_ && !input_done_flag_);
  if (watch != watch_) {
    loop_->watch_stalls(watch ? 1 : -1);
    watch_ = watch;
  }
  if (input_done_flag_ && !want_out) {
    removed_ = true;
    if (watch_) {
      loop_->watch_stalls(-1);
      watch_ = false;
    }
    loop_->remove(fd_.get(), this);
    return;
  }
  bool want_in = !input_done_flag_;
  if (want_out != out_interest_ || want_in != in_interest_) {
    out_interest_ = want_out;
    in_interest_ = want_in;
    loop_->set_interest(fd_.get(), this, want_in, want_out);
  }
}

} // namespace vox::detail
