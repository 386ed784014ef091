// The socket link's class, shared by its three source files (not installed as API: use
// socket_link.hpp): socket_link.cpp (set-up, the I/O loop's events, input),
// socket_link_output.cpp (the outbound queue and the write turn) and
// socket_link_blocking.cpp (blocking reads and writes before `start`).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/error.hpp"
#include "transport/io_reactor.hpp"
#include "transport/link.hpp"
#include "transport/socket.hpp"
#include "transport/tls.hpp"

namespace vox::detail {

/// What one non-blocking read of the socket (or of TLS over it) gave.
struct wire_read {
  enum kind_t { data, again, eof, failed } kind;
  size_t bytes;
  caf::error error;
  wire_read(kind_t k, size_t n = 0, caf::error e = {}) : kind(k), bytes(n), error(std::move(e)) {}
};

/// The peer address of a connected socket ("" when it has none, e.g. an unnamed Unix peer).
std::string peer_address_of(int fd);

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

private:
  caf::expected<void> do_send(byte_span payload, caf::execution_unit* ctx) override;

  caf::expected<void> do_send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx) override;

  /// Before `start`: the caller's thread writes the frame itself (under send_mtx_).
  caf::expected<void> send_blocking(byte_span payload);

public:
  caf::expected<std::optional<byte_buffer>> recv() override;

  void close() override;

  bool enter_stream_mode() override;

  void abort() override;

  void start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) override;

  // -- io_handler: runs on the loop's thread --

  void on_event(io_loop& loop, uint32_t events) override;

  void on_read(io_loop& loop, const io_read& input) override;

  void on_tick(io_loop&, std::chrono::steady_clock::time_point now) override;
  void on_stop(io_loop& loop) override;

  std::string describe() const override {
    return name_;
  }

  link_peer peer() const override;

  uint32_t max_frame_size() const override {
    return options_.max_frame_size;
  }

  bool congested() const override {
    return congested_.load(std::memory_order_acquire);
  }

  void when_drained(std::function<void()> fn) override;

private:
  // -- event-mode output, all under send_mtx_ --

  /// Queues a frame. The first sender to find no write in progress takes the write turn
  /// and writes everything queued, including frames others add meanwhile, in as few
  /// `send` calls as the socket allows; if the socket is full the turn passes to the I/O
  /// loop (EPOLLOUT). No caller ever waits for the peer.
  caf::expected<void> enqueue(byte_span payload, std::unique_lock<std::mutex>& guard);

  /// Appends one frame to the outbound queue, within its bound.
  caf::expected<void> append_locked(byte_span payload);

  /// Writes what is queued unless another sender (or the loop) holds the write turn.
  caf::expected<void> take_write_turn(std::unique_lock<std::mutex>& guard);

  /// Writes while holding the write turn; the lock is dropped around each syscall.
  void flush(std::unique_lock<std::mutex>& guard);

  void on_writable();

  /// Moves what is queued into the batch to write; false when there is nothing to write.
  /// With TLS the batch is the queue's frames encrypted as one run of records, after
  /// whatever OpenSSL produced on its own (handshake flights, alerts) since the last one.
  /// Only the write turn's holder refills, so encrypting needs no send_mtx_: senders keep
  /// queueing meanwhile.
  bool refill(std::unique_lock<std::mutex>& guard);

  /// One non-blocking read into the loop's buffer. The loop's thread only.
  wire_read read_input(uint8_t* dst, size_t size);

  /// `err`, its description prefixed with this link's name.
  caf::error with_name(caf::error err) const;

  /// The first header of a plain link that is the start of a TLS record: a TLS client on
  /// a plain port (or a plain client reading a TLS server's alert). Said clearly instead
  /// of waiting for a "frame" of tens of MiB.
  caf::error check_first_header(const uint8_t* header);

  /// The link cannot carry output any more: remember why (the receiver hears it as the
  /// reason its input ended) and tear the socket down.
  void fail_locked(caf::error reason);

  /// The queue is below the low-water mark (or gone): whoever waited may queue again.
  void release_drained_locked();

  void shut_write_locked();

  /// Points epoll at what is still wanted, tells the loop whether we need ticks, and
  /// deregisters once neither input nor output remains.
  void sync_interest_locked();

  caf::error failure_or(caf::error fallback);

  // -- event-mode input: the loop's thread only --

  /// Takes what one read gave (`got.bytes` of them at `data`): frames go to the receiver,
  /// the end of the stream or a failure ends the input.
  void consume(io_loop& loop, wire_read got, const uint8_t* data);

  /// Delivers every whole frame at the start of `data`; returns how many bytes it used, or
  /// nothing if the input ended (a frame over the limit).
  std::optional<size_t> parse(io_loop& loop, byte_span data);

  /// Parses the carried-over bytes in `buf` and keeps only the unfinished frame.
  bool deliver(io_loop& loop, byte_buffer& buf);

  void end_input(io_loop& loop, caf::error reason);

  caf::error aborted_error() const {
    return make_error(errc::closed, name_ + ": link aborted locally");
  }

  caf::error fail_mid_frame(size_t got, size_t want, const char* part);

  /// One `recv` call: the number of bytes read, 0 at end of stream.
  caf::expected<size_t> read_some(uint8_t* dst, size_t n);

  /// Stream mode, before `start`: whatever bytes come next (the read-ahead buffer's
  /// first); `std::nullopt` at end of stream.
  caf::expected<std::optional<byte_buffer>> recv_bytes();

  /// Fills `dst` with `n` bytes, from the read-ahead buffer first. Returns how many bytes
  /// were obtained, fewer than `n` only at end of stream.
  caf::expected<size_t> read_exact(uint8_t* dst, size_t n);

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

} // namespace vox::detail
