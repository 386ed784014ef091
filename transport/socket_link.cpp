#include "transport/socket_link.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "transport/framing.hpp"
#include "transport/io_reactor.hpp"
#include "transport/tls.hpp"

namespace vox {

namespace {

/// Bytes read ahead in one syscall, so that a burst of small frames costs one read.
constexpr size_t read_ahead_size = 64 * 1024;

/// What one non-blocking read of the socket (or of TLS over it) gave.
struct wire_read {
  enum kind_t { data, again, eof, failed } kind;
  size_t bytes;
  caf::error error;
  wire_read(kind_t k, size_t n = 0, caf::error e = {}) : kind(k), bytes(n), error(std::move(e)) {}
};

/// The peer address of a connected socket ("" when it has none, e.g. an unnamed Unix peer).
std::string peer_address_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    return {};
  return to_string(reinterpret_cast<sockaddr*>(&addr), len);
}

/// Before `start`, a plain blocking socket (prologue and handshake). After it, the socket
/// is non-blocking and served by one I/O loop: input is read there and split into frames
/// straight from the loop's shared buffer; output is queued and written by whichever
/// thread holds the write turn (see `send`).
///
/// With TLS (`tls_`), the socket is non-blocking from the start, every byte goes through
/// the tls_stream, and "blocking" reads and writes before `start` wait in poll().
class socket_link final : public link, public io_handler, public std::enable_shared_from_this<socket_link> {
public:
  socket_link(unique_fd fd, std::string name, link_options options, std::unique_ptr<tls_stream> tls)
    : fd_(std::move(fd)), name_(std::move(name)), options_(options), tls_(std::move(tls)),
      peer_address_(peer_address_of(fd_.get())) {
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
    std::unique_lock<std::mutex> guard{send_mtx_};
    if (send_closed_ || aborted_.load())
      return make_error(errc::closed, name_ + ": send after close or abort");
    if (tx_failure_)
      return tx_failure_;
    if (loop_)
      return enqueue(payload, guard);
    return send_blocking(payload);
  }

  caf::expected<void> send_many(std::span<const byte_span> payloads) override {
    std::unique_lock<std::mutex> guard{send_mtx_};
    if (!loop_) {
      guard.unlock();
      return link::send_many(payloads);
    }
    if (send_closed_ || aborted_.load())
      return make_error(errc::closed, name_ + ": send after close or abort");
    for (auto p : payloads) {
      if (p.size() > UINT32_MAX)
        return make_error(errc::frame_too_large, "payload of " + std::to_string(p.size())
                                                   + " bytes does not fit a u32 length");
      if (auto queued = append_locked(p); !queued)
        return queued;
    }
    return take_write_turn(guard);
  }

private:
  /// Before `start`: the caller's thread writes the frame itself (under send_mtx_).
  caf::expected<void> send_blocking(byte_span payload) {
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

public:
  // r[impl transport.stream]
  caf::expected<std::optional<byte_buffer>> recv() override {
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

  void close() override {
    std::lock_guard<std::mutex> guard{send_mtx_};
    if (send_closed_)
      return;
    send_closed_ = true;
    if (!loop_) {
      shut_write_locked();
      return;
    }
    // Started: what is queued goes out first; a peer that then never closes its side is cut
    // after the stall timeout, so a closed link cannot linger.
    closed_at_ = std::chrono::steady_clock::now();
    if (!writing_)
      shut_write_locked();
    sync_interest_locked();
  }

  bool enter_stream_mode() override {
    // Under send_mtx_, so that a payload is framed or not as a whole.
    std::lock_guard<std::mutex> guard{send_mtx_};
    unframed_.store(true, std::memory_order_release);
    return true;
  }

  void abort() override {
    if (aborted_.exchange(true))
      return;
    // Wakes a blocked recv (it reads EOF) and a blocked send (EPIPE), or the I/O loop; all
    // then see the flag. Not under send_mtx_: abort must not wait for a send stuck on a
    // full socket.
    ::shutdown(fd_.get(), SHUT_RDWR);
  }

  void start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) override {
    auto loop = io->next_loop();
    int flags = ::fcntl(fd_.get(), F_GETFL);
    ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
    receiver_ = std::move(receiver);
    // Bytes read ahead during the handshake are the start of the session's input.
    rx_.assign(rx_buf_.begin() + static_cast<std::ptrdiff_t>(rx_pos_),
               rx_buf_.begin() + static_cast<std::ptrdiff_t>(rx_end_));
    byte_buffer{}.swap(rx_buf_);
    rx_pos_ = rx_end_ = 0;
    {
      std::lock_guard<std::mutex> guard{send_mtx_};
      reactor_ = io; // its threads run as long as a started link needs them
      loop_ = loop;
    }
    // Once the socket is watched, input belongs to the loop's thread: look at rx_ before.
    bool read_ahead = !rx_.empty();
    // The loop reads for a plain link; TLS reads through OpenSSL, so it waits for readiness.
    if (!loop->add(fd_.get(), shared_from_this(), !tls_)) {
      end_input(*loop, make_system_error(errc::io_error, name_ + ": cannot watch the socket", errno));
      return;
    }
    if (read_ahead) // nothing may wake the loop for them: deliver them from there now
      loop->post([self = shared_from_this(), loop] { self->on_event(*loop, 0); });
  }

  // -- io_handler: runs on the loop's thread --

  void on_event(io_loop& loop, uint32_t events) override {
    if (events & EPOLLOUT)
      on_writable();
    if (input_done_)
      return;
    if (!rx_.empty() && !deliver(loop, rx_))
      return;
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0)
      return;
    auto& scratch = loop.scratch();
    consume(loop, read_input(scratch.data(), scratch.size()), scratch.data());
    if (tls_ && !input_done_ && tls_->pending()) // records OpenSSL holds raise no socket event
      loop.post([self = shared_from_this(), lp = &loop] { self->on_event(*lp, EPOLLIN); });
  }

  void on_read(io_loop& loop, const io_read& input) override {
    if (input_done_)
      return;
    if (!input.bytes.empty())
      consume(loop, {wire_read::data, input.bytes.size()}, input.bytes.data());
    else if (input.error == 0)
      consume(loop, {wire_read::eof}, nullptr);
    else
      consume(loop, {wire_read::failed, 0, make_system_error(errc::io_error, name_ + ": recv failed", input.error)},
              nullptr);
  }

  void on_tick(io_loop&, std::chrono::steady_clock::time_point now) override {
    std::unique_lock<std::mutex> guard{send_mtx_};
    if (!watch_)
      return;
    if (writing_ && armed_ && now - last_progress_ > options_.stall_timeout) {
      fail_locked(make_error(errc::backpressure,
                             name_ + ": the peer read nothing for " + std::to_string(options_.stall_timeout.count())
                               + " ms with " + std::to_string(queued_bytes_) + " bytes queued"));
      return;
    }
    if (send_closed_ && now - closed_at_ > options_.stall_timeout) {
      guard.unlock();
      abort();
    }
  }

  std::string describe() const override {
    return name_;
  }

  link_peer peer() const override {
    link_peer p;
    p.address = peer_address_;
    if (tls_)
      tls_->identify(p);
    return p;
  }

  uint32_t max_frame_size() const override {
    return options_.max_frame_size;
  }

  bool congested() const override {
    return congested_.load(std::memory_order_acquire);
  }

  void when_drained(std::function<void()> fn) override {
    std::unique_lock<std::mutex> guard{send_mtx_};
    if (!congested_.load(std::memory_order_relaxed) || tx_failure_ || aborted_.load()) {
      guard.unlock();
      fn();
      return;
    }
    drained_.push_back(std::move(fn));
  }

private:
  // -- event-mode output, all under send_mtx_ --

  /// Queues a frame. The first sender to find no write in progress takes the write turn
  /// and writes everything queued, including frames others add meanwhile, in as few
  /// `send` calls as the socket allows; if the socket is full the turn passes to the I/O
  /// loop (EPOLLOUT). No caller ever waits for the peer.
  caf::expected<void> enqueue(byte_span payload, std::unique_lock<std::mutex>& guard) {
    if (auto queued = append_locked(payload); !queued)
      return queued;
    return take_write_turn(guard);
  }

  /// Appends one frame to the outbound queue, within its bound.
  caf::expected<void> append_locked(byte_span payload) {
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

  /// Writes what is queued unless another sender (or the loop) holds the write turn.
  caf::expected<void> take_write_turn(std::unique_lock<std::mutex>& guard) {
    if (writing_)
      return {};
    writing_ = true;
    flush(guard);
    if (tx_failure_)
      return tx_failure_;
    return {};
  }

  /// Writes while holding the write turn; the lock is dropped around each syscall.
  void flush(std::unique_lock<std::mutex>& guard) {
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

  void on_writable() {
    std::unique_lock<std::mutex> guard{send_mtx_};
    if (writing_ && armed_)
      flush(guard);
  }

  /// Moves what is queued into the batch to write; false when there is nothing to write.
  /// With TLS the batch is the queue's frames encrypted as one run of records, after
  /// whatever OpenSSL produced on its own (handshake flights, alerts) since the last one.
  /// Only the write turn's holder refills, so encrypting needs no send_mtx_: senders keep
  /// queueing meanwhile.
  bool refill(std::unique_lock<std::mutex>& guard) {
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

  /// One non-blocking read into the loop's buffer. The loop's thread only.
  wire_read read_input(uint8_t* dst, size_t size) {
    if (!tls_) {
      auto n = ::recv(fd_.get(), dst, size, MSG_DONTWAIT);
      if (n > 0)
        return {wire_read::data, static_cast<size_t>(n)};
      if (n == 0)
        return {wire_read::eof};
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return {wire_read::again};
      return {wire_read::failed, 0, make_system_error(errc::io_error, name_ + ": recv failed", errno)};
    }
    if (!tls_->pending() && tls_->pull() < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return {wire_read::again};
      return {wire_read::failed, 0, make_system_error(errc::io_error, name_ + ": recv failed", errno)};
    }
    auto out = tls_->read(dst, size);
    if (out.status == tls_stream::result::failed) {
      tls_->answer_failed_handshake();
      return {wire_read::failed, 0, with_name(std::move(out.error))};
    }
    if (out.output) {
      std::unique_lock<std::mutex> guard{send_mtx_};
      tls_output_waiting_ = true;
      if (!send_closed_)
        [[maybe_unused]] auto taken = take_write_turn(guard);
    }
    switch (out.status) {
      case tls_stream::result::done:
        return {wire_read::data, out.bytes};
      case tls_stream::result::eof:
        return {wire_read::eof};
      default:
        return {wire_read::again};
    }
  }

  /// `err`, its description prefixed with this link's name.
  caf::error with_name(caf::error err) const {
    if (!err || err.category() != vox_error_category)
      return err;
    auto what = vox::describe(err); // "code: description"
    auto colon = what.find(": ");
    return make_error(static_cast<errc>(err.code()),
                      name_ + ": " + (colon == std::string::npos ? what : what.substr(colon + 2)));
  }

  /// The first header of a plain link that is the start of a TLS record: a TLS client on
  /// a plain port (or a plain client reading a TLS server's alert). Said clearly instead
  /// of waiting for a "frame" of tens of MiB.
  caf::error check_first_header(const uint8_t* header) {
    if (framed_)
      return {};
    framed_ = true;
    if (tls_ || !looks_like_tls_record(header))
      return {};
    return make_error(errc::tls_failed, name_ + ": the peer speaks TLS on a plain link"
                                                " (configure TLS on both ends, or neither)");
  }

  /// The link cannot carry output any more: remember why (the receiver hears it as the
  /// reason its input ended) and tear the socket down.
  void fail_locked(caf::error reason) {
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

  /// The queue is below the low-water mark (or gone): whoever waited may queue again.
  void release_drained_locked() {
    if (!congested_.load(std::memory_order_relaxed))
      return;
    congested_.store(false, std::memory_order_release);
    auto waiting = std::move(drained_);
    drained_.clear();
    for (auto& fn : waiting)
      fn();
  }

  void shut_write_locked() {
    if (!write_shut_ && !aborted_.load()) {
      if (tls_) { // the queue is empty: the alert goes out in order, best effort
        byte_buffer alert;
        tls_->close_notify(alert);
        [[maybe_unused]] auto n = ::send(fd_.get(), alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      ::shutdown(fd_.get(), SHUT_WR);
    }
    write_shut_ = true;
  }

  /// Points epoll at what is still wanted, tells the loop whether we need ticks, and
  /// deregisters once neither input nor output remains.
  void sync_interest_locked() {
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

  caf::error failure_or(caf::error fallback) {
    std::lock_guard<std::mutex> guard{send_mtx_};
    return end_reason_ ? end_reason_ : std::move(fallback);
  }

  // -- event-mode input: the loop's thread only --

  /// Takes what one read gave (`got.bytes` of them at `data`): frames go to the receiver,
  /// the end of the stream or a failure ends the input.
  void consume(io_loop& loop, wire_read got, const uint8_t* data) {
    if (aborted_.load()) {
      end_input(loop, failure_or(aborted_error()));
      return;
    }
    if (got.kind == wire_read::again)
      return;
    if (got.kind == wire_read::failed) {
      auto err = std::move(got.error);
      {
        // A failed read (a reset, a timeout) leaves the connection unusable both ways:
        // later sends fail with the same reason instead of queuing for a dead socket.
        std::lock_guard<std::mutex> guard{send_mtx_};
        fail_locked(err);
      }
      end_input(loop, failure_or(std::move(err)));
      return;
    }
    if (got.kind == wire_read::eof) {
      // r[impl link.rx.eof]
      if (rx_.empty())
        end_input(loop, failure_or(caf::error{}));
      else
        end_input(loop, make_error(errc::link_closed, name_ + ": peer closed mid-frame with "
                                                        + std::to_string(rx_.size()) + " bytes of a frame"));
      return;
    }
    byte_span bytes{data, got.bytes};
    if (rx_.empty()) {
      // The common case: whole frames straight from the loop's buffer, no copy.
      auto used = parse(loop, bytes);
      if (used && *used < bytes.size())
        rx_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(*used), bytes.end());
    } else {
      rx_.insert(rx_.end(), bytes.begin(), bytes.end());
      deliver(loop, rx_);
    }
  }

  /// Delivers every whole frame at the start of `data`; returns how many bytes it used, or
  /// nothing if the input ended (a frame over the limit).
  std::optional<size_t> parse(io_loop& loop, byte_span data) {
    size_t pos = 0;
    for (;;) {
      // A receiver may have dropped the framing in the frame it just got: the rest are
      // bytes of its own records.
      if (unframed_.load(std::memory_order_relaxed)) {
        if (pos < data.size())
          receiver_->on_frame(data.subspan(pos), &loop);
        return data.size();
      }
      if (data.size() - pos < frame_header_size)
        break;
      if (auto err = check_first_header(data.data() + pos)) {
        end_input(loop, std::move(err));
        return std::nullopt;
      }
      auto len = decode_frame_header(data.data() + pos);
      // Checked before anything is buffered for the frame.
      if (auto err = check_frame_size(len, options_.max_frame_size)) {
        end_input(loop, std::move(err));
        return std::nullopt;
      }
      if (data.size() - pos - frame_header_size < len)
        break;
      // r[impl link.message.empty]
      receiver_->on_frame(data.subspan(pos + frame_header_size, len), &loop);
      pos += frame_header_size + len;
    }
    return pos;
  }

  /// Parses the carried-over bytes in `buf` and keeps only the unfinished frame.
  bool deliver(io_loop& loop, byte_buffer& buf) {
    auto used = parse(loop, buf);
    if (!used)
      return false;
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*used));
    if (buf.empty() && buf.capacity() > io_loop::scratch_size)
      byte_buffer{}.swap(buf); // an idle link keeps no large buffer
    return true;
  }

  void end_input(io_loop& loop, caf::error reason) {
    if (input_done_)
      return;
    input_done_ = true;
    byte_buffer{}.swap(rx_);
    auto receiver = std::move(receiver_);
    receiver->on_end(std::move(reason), &loop);
    std::lock_guard<std::mutex> guard{send_mtx_};
    input_done_flag_ = true;
    sync_interest_locked();
  }

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

  /// Stream mode, before `start`: whatever bytes come next (the read-ahead buffer's
  /// first); `std::nullopt` at end of stream.
  caf::expected<std::optional<byte_buffer>> recv_bytes() {
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
  const std::unique_ptr<tls_stream> tls_;
  const std::string peer_address_;
  std::atomic<bool> aborted_{false};
  /// enter_stream_mode: no u32 prefix either way from then on.
  std::atomic<bool> unframed_{false};

  // Sending side, guarded by send_mtx_.
  std::mutex send_mtx_;
  bool send_closed_ = false;
  caf::error tx_failure_;
  // Event mode (all under send_mtx_): frames not yet picked up by a writer, the batch being
  // written by the holder of the write turn, and how the socket is registered.
  std::shared_ptr<io_reactor> reactor_;
  std::shared_ptr<io_loop> loop_;
  byte_buffer out_;
  byte_buffer inflight_;
  size_t inflight_pos_ = 0;
  size_t queued_bytes_ = 0;
  /// Above the high-water mark and not yet drained to the low one; read without the lock.
  std::atomic<bool> congested_{false};
  std::vector<std::function<void()>> drained_; ///< `when_drained` callbacks
  bool writing_ = false;       ///< someone holds the write turn
  bool armed_ = false;         ///< the turn is with the loop, waiting for EPOLLOUT
  bool out_interest_ = false;
  bool in_interest_ = true;
  bool watch_ = false;
  bool write_shut_ = false;
  bool input_done_flag_ = false;
  bool removed_ = false;
  /// TLS: OpenSSL produced output of its own, or frames waited for the handshake.
  bool tls_output_waiting_ = false;
  byte_buffer spare_; ///< TLS: a ciphertext buffer to reuse (the write turn's holder only)
  caf::error end_reason_;
  std::chrono::steady_clock::time_point last_progress_{};
  std::chrono::steady_clock::time_point closed_at_{};

  // Event-mode input, the loop's thread only.
  std::shared_ptr<link_receiver> receiver_;
  byte_buffer rx_;
  bool input_done_ = false;
  /// The first frame header was checked (by the reading thread: recv, then the loop).
  bool framed_ = false;

  // Receiving side, touched only by the one thread in recv.
  byte_buffer rx_buf_;
  size_t rx_pos_ = 0;
  size_t rx_end_ = 0;
  caf::error rx_failure_;
};

} // namespace

link_ptr make_socket_link(unique_fd fd, std::string description, link_options options,
                          std::unique_ptr<tls_stream> tls) {
  return std::make_shared<socket_link>(std::move(fd), std::move(description), options, std::move(tls));
}

caf::expected<link_ptr> make_stream_link(unique_fd fd, const std::string& kind, link_options options,
                                         const std::string& host) {
  auto name = kind + " " + describe_connection(fd.get());
  if (!options.tls)
    return make_socket_link(std::move(fd), std::move(name), options);
  name = "tls/" + name;
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    return make_system_error(errc::io_error, name + ": cannot make the socket non-blocking", errno);
  auto tls = tls_stream::make(options.tls, fd.get(), host);
  if (!tls)
    return make_error(errc::tls_failed, name + ": " + describe(tls.error()));
  if (!options.tls->is_server()) {
    std::atomic<bool> never{false};
    auto deadline = std::chrono::steady_clock::now() + options.tls->config().handshake_timeout;
    if (auto err = (*tls)->handshake(deadline, never)) {
      auto what = describe(err);
      return make_error(is(err, errc::timeout) ? errc::timeout : errc::tls_failed,
                        name + ": " + what.substr(what.find(": ") + 2));
    }
  }
  return make_socket_link(std::move(fd), std::move(name), options, std::move(*tls));
}

} // namespace vox
