#include "transport/bare_conduit.hpp"

namespace vox {

namespace {

caf::error disconnected() { return make_error(errc::link_closed, "the session is disconnected"); }

caf::expected<void> send_on(const link_ptr& lnk, const message& msg, caf::execution_unit* ctx) {
  if (!lnk)
    return disconnected();
  // Each sending thread reuses its own buffer: encoding allocates only when a message is
  // larger than any this thread encoded before.
  thread_local byte_buffer scratch;
  scratch.clear();
  encode_message_into(scratch, msg);
  return lnk->send(scratch, ctx);
}

} // namespace

link_ptr bare_conduit::link_for(uint64_t generation) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return generation == generation_ ? link_ : nullptr;
}

caf::expected<void> bare_conduit::send(const message& msg, caf::execution_unit* ctx) {
  return send_on(current(), msg, ctx);
}

caf::expected<void> bare_conduit::send(const message& msg, uint64_t generation, caf::execution_unit* ctx) {
  return send_on(link_for(generation), msg, ctx);
}

caf::expected<void> bare_conduit::send_many(std::span<const message> msgs, uint64_t generation,
                                             caf::execution_unit* ctx) {
  auto lnk = link_for(generation);
  if (!lnk)
    return disconnected();
  thread_local std::vector<byte_buffer> scratch;
  thread_local std::vector<byte_span> spans;
  if (scratch.size() < msgs.size())
    scratch.resize(msgs.size());
  spans.clear();
  for (size_t i = 0; i < msgs.size(); ++i) {
    scratch[i].clear();
    encode_message_into(scratch[i], msgs[i]);
    spans.emplace_back(scratch[i]);
  }
  auto sent = lnk->send_many(spans, ctx);
  for (auto& buf : scratch)
    if (buf.capacity() > 64 * 1024)
      byte_buffer{}.swap(buf); // a burst of large Messages is not kept per thread
  return sent;
}

caf::expected<std::optional<message>> bare_conduit::recv() {
  auto lnk = current();
  if (!lnk)
    return disconnected();
  auto frame = lnk->recv();
  if (!frame)
    return std::move(frame.error());
  if (!*frame)
    return std::optional<message>{};
  auto msg = decode_message(**frame);
  if (!msg)
    return std::move(msg.error());
  return std::optional<message>{std::move(*msg)};
}

uint64_t bare_conduit::generation() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return generation_;
}

bool bare_conduit::attached() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return link_ != nullptr;
}

bool bare_conduit::congested() const {
  auto lnk = current();
  return !lnk || lnk->congested();
}

void bare_conduit::when_drained(std::function<void()> fn) {
  link_ptr lnk;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!link_) {
      drained_waiters_.push_back(std::move(fn));
      return;
    }
    lnk = link_;
  }
  lnk->when_drained(std::move(fn));
}

link_ptr bare_conduit::current() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return link_;
}

link_ptr bare_conduit::detach() {
  std::lock_guard<std::mutex> guard{mtx_};
  return std::move(link_);
}

uint64_t bare_conduit::attach(link_ptr lnk) {
  std::vector<std::function<void()>> waiters;
  uint64_t gen;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    link_ = std::move(lnk);
    gen = ++generation_;
    waiters.swap(drained_waiters_);
  }
  for (auto& fn : waiters)
    fn();
  return gen;
}

void bare_conduit::close() {
  if (auto lnk = current())
    lnk->close();
}

bool is_decode_error(const caf::error& err) {
  for (auto code : {errc::truncated, errc::varint_overflow, errc::invalid_tag, errc::invalid_utf8,
                    errc::length_limit, errc::trailing_bytes, errc::invalid_value, errc::compression_failed})
    if (is(err, code))
      return true;
  return false;
}

} // namespace vox
