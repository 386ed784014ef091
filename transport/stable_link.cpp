#include "transport/stable_link.hpp"

#include "protocol/error.hpp"

namespace vox {

/// Hands one raw link's input to the stable link, tagged with the transport it came on.
class stable_link::raw_input final : public link_receiver {
public:
  raw_input(std::weak_ptr<stable_link> owner, uint64_t transport) : owner_(std::move(owner)), transport_(transport) {}

  void on_frame(byte_span payload, caf::execution_unit* ctx) override {
    if (auto s = owner_.lock())
      s->frame_from(transport_, payload, ctx);
  }
  void on_end(caf::error reason, caf::execution_unit* ctx) override {
    if (auto s = owner_.lock())
      s->end_from(transport_, std::move(reason), ctx);
  }

private:
  std::weak_ptr<stable_link> owner_;
  uint64_t transport_;
};

/// Links may deliver on the sending thread: a memory link calls the peer's receiver inside
/// send, under its own locks and under our write turn (`send_mtx_`). An ack-only frame that such a delivery calls
/// for therefore waits until the thread leaves its outermost stable_link call, where it
/// holds no lock of a stable link or of the links under it. Every entry point that can
/// lead to a delivery opens a scope before it takes `mtx_`.
class stable_link::call_scope {
public:
  call_scope() { ++depth_; }
  ~call_scope() {
    if (depth_ == 1) {
      // Each send_ack opens a nested scope: acks its deliveries call for land here too.
      while (!due_.empty()) {
        auto next = std::move(due_.back());
        due_.pop_back();
        if (auto s = next.lock())
          s->send_ack();
      }
    }
    --depth_;
  }
  call_scope(const call_scope&) = delete;
  call_scope& operator=(const call_scope&) = delete;

  static void defer(std::weak_ptr<stable_link> s) { due_.push_back(std::move(s)); }

private:
  static thread_local int depth_;
  static thread_local std::vector<std::weak_ptr<stable_link>> due_;
};

thread_local int stable_link::call_scope::depth_ = 0;
thread_local std::vector<std::weak_ptr<stable_link>> stable_link::call_scope::due_;

std::shared_ptr<stable_link> stable_link::make(link_ptr raw, stable::key key, stable_options opts) {
  return std::shared_ptr<stable_link>{new stable_link(std::move(raw), key, opts)};
}

stable_link::stable_link(link_ptr raw, stable::key key, stable_options opts)
  : raw_(std::move(raw)), key_(key), opts_(opts), max_frame_size_(raw_->max_frame_size()),
    next_seq_(opts.first_seq), replay_(opts.replay) {}

byte_buffer stable_link::encode_next(byte_span payload) {
  // r[impl stable.framing]
  // r[impl stable.ack]: every frame carries what we received so far, as the reference does
  byte_buffer frame;
  frame.reserve(payload.size() + 16);
  stable::encode_frame(frame, {next_seq_, last_received_}, payload);
  return frame;
}

// r[impl stable.seq.monotonic]
caf::expected<void> stable_link::do_send(byte_span payload, caf::execution_unit* ctx) {
  call_scope scope;
  std::lock_guard<std::mutex> turn{send_mtx_};
  link_ptr raw;
  uint32_t seq;
  byte_buffer frame;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return make_error(errc::closed, "stable link closed");
    seq = next_seq_;
    frame = encode_next(payload);
    ++next_seq_;
    sent_any_ = true;
    raw = raw_;
    if (raw)
      ack_went_out();
  }
  caf::expected<void> sent = caf::unit;
  if (raw)
    sent = raw->send(frame, ctx);
  // An ack of this frame may have come in meanwhile: the entry then waits for the next
  // ack, and a replay of it is dropped by the peer as a duplicate.
  std::lock_guard<std::mutex> guard{mtx_};
  replay_.push(seq, std::move(frame));
  // A transport that broke under a link that reconnects is not the sender's concern: the
  // frame goes out again on the next transport.
  if (!sent && !lost_)
    return sent;
  return caf::unit;
}

caf::expected<void> stable_link::do_send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx) {
  call_scope scope;
  std::lock_guard<std::mutex> turn{send_mtx_};
  link_ptr raw;
  uint32_t first_seq;
  std::vector<byte_buffer> frames;
  frames.reserve(payloads.size());
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return make_error(errc::closed, "stable link closed");
    first_seq = next_seq_;
    for (auto p : payloads) {
      frames.push_back(encode_next(p));
      ++next_seq_;
    }
    sent_any_ = sent_any_ || !payloads.empty();
    raw = raw_;
    if (raw)
      ack_went_out();
  }
  caf::expected<void> sent = caf::unit;
  if (raw) {
    std::vector<byte_span> spans(frames.begin(), frames.end());
    sent = raw->send_many(spans, ctx);
  }
  std::lock_guard<std::mutex> guard{mtx_};
  for (size_t i = 0; i < frames.size(); ++i)
    replay_.push(static_cast<uint32_t>(first_seq + i), std::move(frames[i]));
  if (!sent && !lost_)
    return sent;
  return caf::unit;
}

bool stable_link::congested() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return !raw_ || replay_.full() || raw_->congested();
}

void stable_link::when_drained(std::function<void()> fn) {
  link_ptr raw;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!raw_ || replay_.full()) {
      drained_waiters_.push_back(std::move(fn));
      return;
    }
    raw = raw_;
  }
  raw->when_drained(std::move(fn));
}


caf::expected<std::optional<byte_span>> stable_link::accept_frame(const stable::frame_view& frame) {
  const auto& h = frame.header;
  if (h.ack) {
    if (!sent_any_ || stable::seq_after(*h.ack, static_cast<uint32_t>(next_seq_ - 1)))
      return make_error(errc::invalid_value,
                        "stable frame acknowledges seq " + std::to_string(*h.ack) + ", which was never sent");
    replay_.trim(*h.ack);
  }
  if (last_received_) {
    // r[impl stable.seq.monotonic]: what we have seen is a duplicate (a replay)
    if (!stable::seq_after(h.seq, *last_received_))
      return std::optional<byte_span>{};
    if (h.seq != static_cast<uint32_t>(*last_received_ + 1))
      return make_error(errc::invalid_value, "stable frame seq " + std::to_string(h.seq) + " after "
                                               + std::to_string(*last_received_) + ": frames are missing");
  }
  last_received_ = h.seq;
  return std::optional<byte_span>{frame.item};
}

bool stable_link::count_for_ack(size_t item_bytes) {
  ++unacked_frames_;
  unacked_bytes_ += item_bytes;
  // Only after a frame of ours: the ack-only frame repeats its sequence number.
  if (ack_due_ || !sent_any_ || !raw_)
    return false;
  ack_due_ = (opts_.ack_after_frames > 0 && unacked_frames_ >= opts_.ack_after_frames)
             || (opts_.ack_after_bytes > 0 && unacked_bytes_ >= opts_.ack_after_bytes);
  return ack_due_;
}

void stable_link::ack_went_out() {
  unacked_frames_ = 0;
  unacked_bytes_ = 0;
}

// r[impl stable.ack]
void stable_link::send_ack() {
  call_scope scope;
  std::lock_guard<std::mutex> turn{send_mtx_};
  link_ptr raw;
  byte_buffer frame;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!std::exchange(ack_due_, false) || closed_ || failed_ || !raw_ || unacked_frames_ == 0)
      return;
    stable::encode_frame(frame, {static_cast<uint32_t>(next_seq_ - 1), last_received_}, {});
    ack_went_out();
    raw = raw_;
  }
  (void) raw->send(frame); // a failure shows as the transport's end
}

void stable_link::frame_from(uint64_t transport, byte_span payload, caf::execution_unit* ctx) {
  call_scope scope;
  auto frame = stable::decode_frame(payload);
  std::shared_ptr<link_receiver> up;
  std::optional<byte_span> item;
  caf::error err;
  std::vector<std::function<void()>> drained;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (transport != transport_ || failed_)
      return;
    if (!frame) {
      err = std::move(frame.error());
    } else if (auto accepted = accept_frame(*frame); !accepted) {
      err = std::move(accepted.error());
    } else {
      item = *accepted;
      if (item && count_for_ack(item->size()))
        call_scope::defer(weak_from_this());
    }
    if (err)
      failed_ = true;
    if (!drained_waiters_.empty() && raw_ && !replay_.full())
      drained.swap(drained_waiters_);
    up = upper_;
  }
  for (auto& fn : drained)
    fn();
  if (!up)
    return;
  if (err)
    up->on_end(std::move(err), ctx);
  else if (item)
    up->on_frame(*item, ctx);
}

void stable_link::end_from(uint64_t transport, caf::error reason, caf::execution_unit* ctx) {
  std::shared_ptr<link_receiver> up;
  std::function<void(caf::error)> lost;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (transport != transport_ || failed_)
      return;
    if (lost_ && !closed_) {
      lost = lost_;
      // Senders hold back (congested) and their frames wait for the next transport. The
      // dead link is kept until then: it may be what is delivering this end, under its lock.
      dead_ = std::move(raw_);
    } else {
      up = upper_;
    }
  }
  if (lost)
    lost(std::move(reason));
  else if (up)
    up->on_end(std::move(reason), ctx);
}

caf::expected<std::optional<byte_buffer>> stable_link::recv() {
  for (;;) {
    link_ptr raw;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      raw = raw_;
    }
    if (!raw)
      return make_error(errc::link_closed, "stable link has no transport");
    auto payload = raw->recv();
    if (!payload || !*payload)
      return payload;
    auto frame = stable::decode_frame(**payload);
    if (!frame)
      return std::move(frame.error());
    std::lock_guard<std::mutex> guard{mtx_};
    auto item = accept_frame(*frame);
    if (!item)
      return std::move(item.error());
    if (*item)
      return std::optional<byte_buffer>{byte_buffer((*item)->begin(), (*item)->end())};
  }
}

void stable_link::start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) {
  call_scope scope;
  link_ptr raw;
  std::shared_ptr<link_receiver> input;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    upper_ = std::move(receiver);
    io_ = io;
    if (adopted_ || !raw_)
      return;
    raw = raw_;
    input = std::make_shared<raw_input>(weak_from_this(), transport_);
  }
  // Outside the lock: a link may deliver what it already holds from inside start.
  raw->start(std::move(input), io);
}

std::shared_ptr<link_receiver> stable_link::adopt_started() {
  std::lock_guard<std::mutex> guard{mtx_};
  adopted_ = true;
  return std::make_shared<raw_input>(weak_from_this(), transport_);
}

// r[impl stable.reconnect]
// r[impl stable.replay-buffer.order]
std::shared_ptr<link_receiver> stable_link::attach(link_ptr raw, std::optional<uint32_t> peer_last_received,
                                                   stable::key next_key, bool started) {
  call_scope scope;
  link_ptr old;
  std::shared_ptr<link_receiver> input;
  std::vector<std::function<void()>> drained;
  std::shared_ptr<io_reactor> io;
  {
    // No send between the switch and the replay: they would overtake replayed frames.
    std::lock_guard<std::mutex> turn{send_mtx_};
    // Copies: an ack on the new transport may trim the buffer while they go out.
    std::vector<byte_buffer> frames;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      old = std::exchange(raw_, raw);
      if (!old)
        old = std::move(dead_);
      ++transport_;
      key_ = next_key;
      failed_ = false;
      input = std::make_shared<raw_input>(weak_from_this(), transport_);
      if (peer_last_received)
        replay_.trim(*peer_last_received);
      // r[impl stable.reconnect.client-replay]
      // r[impl stable.reconnect.server-replay]
      for (const auto& e : replay_)
        frames.push_back(e.frame);
      if (!replay_.full())
        drained.swap(drained_waiters_);
      io = io_;
    }
    if (!frames.empty()) {
      std::vector<byte_span> spans(frames.begin(), frames.end());
      (void) raw->send_many(spans); // a failure shows as the new transport's end
    }
  }
  if (old)
    old->abort();
  if (!started)
    raw->start(input, io);
  for (auto& fn : drained)
    fn();
  return started ? input : nullptr;
}

void stable_link::fail(caf::error reason) {
  std::shared_ptr<link_receiver> up;
  link_ptr raw;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (failed_ || closed_)
      return;
    failed_ = true;
    closed_ = true;
    up = upper_;
    raw = std::move(raw_);
    dead_.reset();
    ++transport_; // whatever the old transport still says is ignored
  }
  if (raw)
    raw->abort();
  if (up)
    up->on_end(std::move(reason), nullptr);
}

uint64_t stable_link::transports() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return transport_ + 1;
}

void stable_link::on_transport_lost(std::function<void(caf::error)> fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  lost_ = std::move(fn);
}

std::optional<uint32_t> stable_link::last_received() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return last_received_;
}

stable::key stable_link::key() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return key_;
}

size_t stable_link::replay_frames() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return replay_.size();
}

link_ptr stable_link::mark_closed() {
  std::lock_guard<std::mutex> guard{mtx_};
  closed_ = true;
  return raw_;
}

void stable_link::close() {
  if (auto raw = mark_closed())
    raw->close();
}

void stable_link::abort() {
  if (auto raw = mark_closed())
    raw->abort();
}

link_peer stable_link::peer() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return raw_ ? raw_->peer() : link_peer{};
}

std::string stable_link::describe() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return raw_ ? "stable over " + raw_->describe() : std::string{"stable (no transport)"};
}

} // namespace vox
