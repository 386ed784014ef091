#include "transport/socket_link.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "transport/framing.hpp"
#include "transport/socket_link_impl.hpp"

namespace vox::detail {

std::string peer_address_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    return {};
  return to_string(reinterpret_cast<sockaddr*>(&addr), len);
}

// r[impl transport.stream]
caf::expected<void> socket_link::do_send(byte_span payload, caf::execution_unit*) {
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

caf::expected<void> socket_link::do_send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx) {
  std::unique_lock<std::mutex> guard{send_mtx_};
  if (!loop_) {
    guard.unlock();
    return link::do_send_many(payloads, ctx);
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

void socket_link::close() {
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

bool socket_link::enter_stream_mode() {
  // Under send_mtx_, so that a payload is framed or not as a whole.
  std::lock_guard<std::mutex> guard{send_mtx_};
  unframed_.store(true, std::memory_order_release);
  return true;
}

void socket_link::abort() {
  if (aborted_.exchange(true))
    return;
  // Wakes a blocked recv (it reads EOF) and a blocked send (EPIPE), or the I/O loop; all
  // then see the flag. Not under send_mtx_: abort must not wait for a send stuck on a
  // full socket.
  ::shutdown(fd_.get(), SHUT_RDWR);
}

void socket_link::start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) {
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
    reactor_ = io; // its threads run until this link has sent all it will send
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

void socket_link::on_event(io_loop& loop, uint32_t events) {
  if (events & EPOLLOUT)
    on_writable();
  if (input_done_)
    return;
  if (!rx_.empty() && !deliver(loop, rx_))
    return;
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0)
    return;
  auto& scratch = loop.scratch();
  auto got = read_input(scratch.data(), scratch.size());
  bool data = got.kind == wire_read::data;
  consume(loop, std::move(got), scratch.data());
  // Records OpenSSL holds raise no socket event (asked only after a read that gave data:
  // a read that found too little says nothing about the records behind it).
  if (data && tls_ && !input_done_ && tls_->pending())
    loop.post([self = shared_from_this(), lp = &loop] { self->on_event(*lp, EPOLLIN); });
}

void socket_link::on_read(io_loop& loop, const io_read& input) {
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

void socket_link::on_tick(io_loop&, std::chrono::steady_clock::time_point now) {
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

void socket_link::on_stop(io_loop& loop) {
  abort(); // no loop writes for it any more either
  end_input(loop, make_error(errc::link_closed, name_ + ": its I/O loop stopped"));
}

link_peer socket_link::peer() const {
  link_peer p;
  p.address = peer_address_;
  if (tls_)
    tls_->identify(p);
  return p;
}

void socket_link::when_drained(std::function<void()> fn) {
  std::unique_lock<std::mutex> guard{send_mtx_};
  if (!congested_.load(std::memory_order_relaxed) || tx_failure_ || aborted_.load()) {
    guard.unlock();
    fn();
    return;
  }
  drained_.push_back(std::move(fn));
}

wire_read socket_link::read_input(uint8_t* dst, size_t size) {
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

caf::error socket_link::check_first_header(const uint8_t* header) {
  if (framed_)
    return {};
  framed_ = true;
  if (tls_ || !looks_like_tls_record(header))
    return {};
  return make_error(errc::tls_failed, name_ + ": the peer speaks TLS on a plain link"
                                              " (configure TLS on both ends, or neither)");
}

caf::error socket_link::failure_or(caf::error fallback) {
  std::lock_guard<std::mutex> guard{send_mtx_};
  return end_reason_ ? end_reason_ : std::move(fallback);
}

void socket_link::consume(io_loop& loop, wire_read got, const uint8_t* data) {
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

std::optional<size_t> socket_link::parse(io_loop& loop, byte_span data) {
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

bool socket_link::deliver(io_loop& loop, byte_buffer& buf) {
  auto used = parse(loop, buf);
  if (!used)
    return false;
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*used));
  if (buf.empty() && buf.capacity() > io_loop::scratch_size)
    byte_buffer{}.swap(buf); // an idle link keeps no large buffer
  return true;
}

void socket_link::end_input(io_loop& loop, caf::error reason) {
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

} // namespace vox::detail

namespace vox {

using detail::socket_link;
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
