#include "transport/memory_link.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/worker.hpp>

#include "transport/framing.hpp"

namespace vox {

namespace {

/// The sender's execution unit as a memory link hands it to the receiver: a CAF worker
/// (work stealing) schedules the actor a frame wakes at the *back* of its own queue.
///
/// Either way nobody is woken: the actor runs on the sender's thread once the jobs
/// queued before it ran. The worker's own `exec_later` would put it at the front
/// (CAF's choice for actor-to-actor sends). Across a link that starves: two sessions
/// talking over it form a cycle in which every step puts the next one first, so jobs
/// the cycle leaves behind (a closed connection's drivers) sink and wait to be stolen,
/// and a steal (`take_tail`) walks the whole queue. Measured: vconn open+close over
/// memory at a tenth of its rate, with the heap growing. Any other unit (an I/O loop,
/// CAF's test coordinator) is asked as usual.
class sender_unit final : public caf::execution_unit {
public:
  explicit sender_unit(caf::execution_unit* inner) : caf::execution_unit(*inner), inner_(inner) {}

  void exec_later(caf::resumable* job) override {
    using worker = caf::scheduler::worker<caf::policy::work_stealing>;
    if (auto* w = dynamic_cast<worker*>(inner_))
      w->external_enqueue(job);
    else
      inner_->exec_later(job);
  }

private:
  caf::execution_unit* inner_;
};

/// One direction of a pair. Both endpoints hold it, so it outlives whichever dies first.
struct channel {
  struct entry {
    byte_buffer payload;
    /// Size of a payload that exceeded the limit and was therefore never copied.
    uint64_t oversized = 0;
  };

  std::mutex mtx;
  std::condition_variable cv;
  std::deque<entry> queue;
  /// The sending endpoint closed or aborted: the receiver sees EOF once the queue drains.
  bool writer_done = false;
  /// The receiving endpoint aborted: nothing will ever be read again.
  bool reader_gone = false;
  /// Set once the receiving endpoint started: payloads go straight to it, on the sending
  /// thread, under `mtx` (which keeps them in order).
  std::shared_ptr<link_receiver> receiver;

  /// Ends a started receiver's input (once).
  void end_locked(caf::error reason) {
    if (auto r = std::move(receiver))
      r->on_end(std::move(reason), nullptr);
  }
};

class memory_link final : public link {
public:
  memory_link(std::shared_ptr<channel> tx, std::shared_ptr<channel> rx, link_options options,
              std::string name)
    : tx_(std::move(tx)), rx_(std::move(rx)), options_(options), name_(std::move(name)) {
    // nop
  }

  ~memory_link() override {
    abort();
  }

  caf::expected<void> do_send(byte_span payload, caf::execution_unit* ctx) override {
    if (payload.size() > UINT32_MAX)
      return make_error(errc::frame_too_large, "payload of " + std::to_string(payload.size())
                                                 + " bytes does not fit a u32 length");
    bool oversized = payload.size() > options_.max_frame_size;
    std::lock_guard<std::mutex> guard{tx_->mtx};
    if (tx_->writer_done)
      return make_error(errc::closed, name_ + ": send after close or abort");
    if (tx_->reader_gone)
      return make_error(errc::link_closed, name_ + ": the peer aborted the link");
    if (tx_->receiver) {
      // r[impl link.message.empty]
      if (oversized)
        tx_->end_locked(check_frame_size(payload.size(), options_.max_frame_size));
      else
        deliver(payload, ctx); // no copy, no thread
      return {};
    }
    channel::entry item;
    // Decide before copying, so an oversized payload costs nothing, like on a socket.
    if (oversized)
      item.oversized = payload.size();
    else
      item.payload.assign(payload.begin(), payload.end());
    tx_->queue.push_back(std::move(item));
    tx_->cv.notify_one();
    return {};
  }

  void deliver(byte_span payload, caf::execution_unit* ctx) {
    if (ctx == nullptr) {
      tx_->receiver->on_frame(payload, nullptr);
      return;
    }
    sender_unit unit{ctx};
    tx_->receiver->on_frame(payload, &unit);
  }

  caf::expected<std::optional<byte_buffer>> recv() override {
    std::unique_lock<std::mutex> guard{rx_->mtx};
    rx_->cv.wait(guard, [this] {
      return rx_->reader_gone || rx_failure_ || !rx_->queue.empty() || rx_->writer_done;
    });
    if (rx_->reader_gone)
      return aborted_error();
    if (rx_failure_)
      return rx_failure_;
    // r[impl link.rx.eof]
    if (rx_->queue.empty())
      return std::optional<byte_buffer>{};
    auto item = std::move(rx_->queue.front());
    rx_->queue.pop_front();
    if (item.oversized > 0) {
      rx_failure_ = check_frame_size(item.oversized, options_.max_frame_size);
      return rx_failure_;
    }
    // r[impl link.message.empty]
    return std::optional<byte_buffer>{std::move(item.payload)};
  }

  void close() override {
    std::lock_guard<std::mutex> guard{tx_->mtx};
    tx_->writer_done = true;
    tx_->end_locked({});
    tx_->cv.notify_all();
  }

  void abort() override {
    {
      std::lock_guard<std::mutex> guard{rx_->mtx};
      rx_->reader_gone = true;
      rx_->queue.clear();
      rx_->end_locked(aborted_error());
      rx_->cv.notify_all();
    }
    close();
  }

  void start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>&) override {
    std::lock_guard<std::mutex> guard{rx_->mtx};
    if (rx_->reader_gone) {
      receiver->on_end(aborted_error(), nullptr);
      return;
    }
    for (auto& item : rx_->queue) {
      if (item.oversized > 0) {
        receiver->on_end(check_frame_size(item.oversized, options_.max_frame_size), nullptr);
        rx_->queue.clear();
        rx_->reader_gone = true;
        return;
      }
      receiver->on_frame(item.payload, nullptr);
    }
    rx_->queue.clear();
    if (rx_failure_) {
      receiver->on_end(rx_failure_, nullptr);
      return;
    }
    if (rx_->writer_done) {
      receiver->on_end({}, nullptr);
      return;
    }
    rx_->receiver = std::move(receiver);
  }

  uint32_t max_frame_size() const override {
    return options_.max_frame_size;
  }

  bool compressible() const override {
    return false;
  }

  std::string describe() const override {
    return name_;
  }

private:
  caf::error aborted_error() const {
    return make_error(errc::closed, name_ + ": link aborted locally");
  }

  std::shared_ptr<channel> tx_;
  std::shared_ptr<channel> rx_;
  link_options options_;
  std::string name_;
  /// Set once a frame exceeded the limit; guarded by `rx_->mtx`.
  caf::error rx_failure_;
};

} // namespace

// r[impl transport.memory]
std::pair<link_ptr, link_ptr> make_memory_link_pair(link_options options) {
  static std::atomic<uint64_t> next_id{1};
  auto id = std::to_string(next_id.fetch_add(1, std::memory_order_relaxed));
  auto a_to_b = std::make_shared<channel>();
  auto b_to_a = std::make_shared<channel>();
  return {std::make_shared<memory_link>(a_to_b, b_to_a, options, "memory " + id + " a->b"),
          std::make_shared<memory_link>(b_to_a, a_to_b, options, "memory " + id + " b->a")};
}

} // namespace vox
