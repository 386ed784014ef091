// A link that can lose what is sent on it, as a socket's buffers are lost when the
// network goes away: for tests of what survives a broken link.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "transport/link.hpp"

namespace vox::test {

/// Forwards everything to `inner` until `swallow()`; from then on every payload sent
/// vanishes (the send still succeeds). Receiving is untouched.
class lossy_link final : public link {
public:
  explicit lossy_link(link_ptr inner) : inner_(std::move(inner)) {}

  void swallow() { swallowing_ = true; }

  /// Waits at most `bound` until `n` payloads have vanished.
  bool wait_swallowed(size_t n, std::chrono::milliseconds bound) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, bound, [&] { return swallowed_ >= n; });
  }

protected:
  caf::expected<void> do_send(byte_span payload, caf::execution_unit* ctx) override {
    if (swallowing_) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        ++swallowed_;
      }
      cv_.notify_all();
      return {};
    }
    return inner_->send(payload, ctx);
  }

public:
  bool congested() const override { return inner_->congested(); }
  void when_drained(std::function<void()> fn) override { inner_->when_drained(std::move(fn)); }
  caf::expected<std::optional<byte_buffer>> recv() override { return inner_->recv(); }
  void start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) override {
    inner_->start(std::move(receiver), io);
  }
  void close() override { inner_->close(); }
  void abort() override { inner_->abort(); }
  std::string describe() const override { return "lossy " + inner_->describe(); }

private:
  link_ptr inner_;
  std::atomic<bool> swallowing_{false};
  std::mutex mtx_;
  std::condition_variable cv_;
  size_t swallowed_ = 0;
};

} // namespace vox::test
