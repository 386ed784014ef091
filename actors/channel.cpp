#include "actors/channel.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/driver_channels.hpp"
#include "actors/io.hpp"

namespace vox::detail {

namespace {

using clock = std::chrono::steady_clock;

/// What is left of `deadline` as a driver-side timeout (never zero: zero means none).
std::chrono::milliseconds remaining(std::optional<clock::time_point> deadline) {
  if (!deadline)
    return std::chrono::milliseconds{0};
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now());
  return std::max(left, std::chrono::milliseconds{1});
}

caf::error reset_error() { return make_error(errc::closed, "channel was reset"); }

} // namespace

channel_binder*& current_binder() {
  thread_local channel_binder* binder = nullptr;
  return binder;
}

channel_end::~channel_end() {
  if (binding() == nullptr || failure_ || closed_ || reset_.load())
    return;
  control(binding_.decl.local_receives ? channel_control_msg::kind::release : channel_control_msg::kind::close, {});
}

bool channel_end::bind(channel_binding b) {
  {
    std::lock_guard<std::mutex> guard{bind_mtx_};
    if (bound_.load(std::memory_order_relaxed))
      return false;
    binding_ = std::move(b);
    bound_.store(true, std::memory_order_release);
  }
  bind_cv_.notify_all();
  return true;
}

const channel_binding* channel_end::wait_bound(std::optional<clock::time_point> deadline) const {
  if (auto* b = binding())
    return b;
  std::unique_lock<std::mutex> guard{bind_mtx_};
  auto ready = [this] { return bound_.load(std::memory_order_relaxed); };
  if (deadline)
    bind_cv_.wait_until(guard, *deadline, ready);
  else
    bind_cv_.wait(guard, ready);
  return binding();
}

caf::error channel_end::failure() const {
  if (!failure_ && reset_.load(std::memory_order_acquire))
    return reset_error();
  return failure_;
}

void channel_end::abandon(caf::error reason) {
  if (!failure_)
    failure_ = std::move(reason);
}

caf::error channel_end::send_check() const {
  if (auto err = failure())
    return err;
  if (closed_)
    return make_error(errc::closed, "channel is closed");
  if (binding() == nullptr)
    return make_error(errc::invalid_request, "the channel end is not bound to a call yet");
  if (binding_.decl.local_receives)
    return make_error(errc::invalid_request, "this end receives");
  return {};
}

caf::error channel_end::write_item(payload item, caf::execution_unit* ctx) {
  std::vector<payload> one;
  one.push_back(std::move(item));
  return write_items(std::move(one), ctx);
}

caf::error channel_end::write_items(std::vector<payload> items, caf::execution_unit* ctx) {
  if (binding_.context->closed.load(std::memory_order_acquire)) {
    abandon(make_error(errc::connection_closed, "the channel's connection is closed"));
    return failure_;
  }
  credit_ -= static_cast<uint32_t>(items.size());
  std::vector<message> msgs(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    msgs[i].connection_id = binding_.context->conn;
    // r[impl rpc.channel.item]
    msgs[i].payload.emplace<channel_message>(channel_message{binding_.decl.id, channel_item{std::move(items[i])}});
  }
  auto sent = binding_.context->conduit->send_many(msgs, binding_.generation, ctx);
  if (!sent) {
    abandon(make_error(errc::io_error, "sending channel items failed: " + describe(sent.error())));
    return failure_;
  }
  return {};
}

void channel_end::control(channel_control_msg::kind what, vox::metadata md) {
  caf::anon_send(binding_.driver, channel_control_msg{binding_.decl, what, std::move(md), binding_.generation});
}

void channel_end::close(vox::metadata md) {
  if (failure() || closed_)
    return;
  closed_ = true;
  if (binding() != nullptr && !binding_.decl.local_receives)
    control(channel_control_msg::kind::close, std::move(md));
}

void channel_end::reset(vox::metadata md) {
  // Only atomics here: the thread that uses the end may be waiting in it right now; its
  // wait ends when the driver drops the channel.
  if (binding() == nullptr || reset_.exchange(true))
    return;
  control(channel_control_msg::kind::reset, std::move(md));
}

caf::error channel_end::take_error(caf::error e) {
  // A timeout only ends one wait; anything from CAF itself means the driver is gone.
  if (reset_.load(std::memory_order_acquire))
    e = reset_error();
  else if (is(e, errc::timeout))
    return e;
  if (e.category() != vox_error_category)
    e = make_error(errc::connection_closed, "the channel's connection is closed");
  abandon(std::move(e));
  return failure_;
}

caf::error channel_end::take_credit(caf::expected<uint32_t> credit) {
  if (!credit)
    return take_error(std::move(credit.error()));
  credit_ += *credit;
  return {};
}

void channel_end::take_batch(caf::expected<channel_batch> batch) {
  if (!batch) {
    take_error(std::move(batch.error()));
    return;
  }
  for (auto& item : batch->items)
    items_.push_back(std::move(item));
  if (batch->closed)
    closed_ = true;
}

caf::error channel_end::wait_credit(std::optional<clock::time_point> deadline) {
  if (wait_bound(deadline) == nullptr)
    return make_error(errc::timeout, "the channel's call did not go out before the deadline");
  if (auto err = send_check(); err || credit_ > 0)
    return err;
  if (auto refused = refuse_on_io_thread("a blocking channel send"))
    return refused;
  caf::scoped_actor self{*binding_.context->system};
  caf::error out;
  self->request(binding_.driver, caf::infinite, channel_credit_atom::value, request(remaining(deadline)))
    .receive([&](uint32_t n) { out = take_credit(n); }, [&](caf::error& e) { out = take_credit(std::move(e)); });
  return out;
}

caf::error channel_end::wait_items(std::optional<clock::time_point> deadline) {
  if (!items_.empty() || closed_ || failure())
    return {};
  if (wait_bound(deadline) == nullptr)
    return make_error(errc::timeout, "no channel item before the deadline");
  if (auto refused = refuse_on_io_thread("a blocking channel receive"))
    return refused;
  caf::scoped_actor self{*binding_.context->system};
  caf::error out;
  self->request(binding_.driver, caf::infinite, channel_recv_atom::value, request(remaining(deadline)))
    .receive([&](channel_batch& b) { take_batch(std::move(b)); },
             [&](caf::error& e) {
               if (is(e, errc::timeout) && !reset_.load())
                 out = make_error(errc::timeout, "no channel item before the deadline");
               else
                 take_batch(std::move(e));
             });
  return out;
}

void write_channel(postcard::writer& w, const end_ptr& end, bool local_receives) {
  auto* binder = current_binder();
  if (binder == nullptr || !binder->context || binder->table != nullptr || !end) {
    // Not inside a call's encoding.
    if (binder != nullptr)
      binder->failed = true;
    w.varint(0);
    return;
  }
  // r[impl rpc.channel.binding]
  channel_decl decl{binder->context->allocate(), local_receives, end->initial_credit()};
  binder->generation = binder->context->conduit->generation();
  if (end->failure() || end->closed() || !end->bind({binder->context, binder->driver, decl, binder->generation})) {
    binder->failed = true; // used in another call already, or closed before any call
    w.varint(0);
    return;
  }
  binder->declared.push_back(decl);
  binder->ends.push_back(end);
  binder->offsets.push_back(static_cast<uint32_t>(w.size()));
  // r[impl rpc.channel.payload-encoding]
  w.varint(decl.id);
}

bool read_channel(postcard::reader& r, end_ptr& end, bool local_receives, uint32_t initial_credit) {
  uint64_t id = 0;
  if (!r.varint(id))
    return false;
  auto* binder = current_binder();
  if (binder == nullptr || binder->table == nullptr)
    return r.fail(errc::invalid_value, "a channel argument outside of a call");
  channel_decl decl{id, local_receives, initial_credit};
  binder->generation = binder->context->conduit->generation();
  if (!binder->table->declare(decl, true, binder->generation))
    return r.fail(errc::invalid_value, "channel id " + std::to_string(id) + " is 0 or already in use");
  end = std::make_shared<channel_end>(initial_credit);
  end->bind({binder->context, binder->driver, decl, binder->generation});
  binder->declared.push_back(decl);
  return true;
}

std::optional<payload> rewrite_channel_ids(const payload& args, const std::vector<uint32_t>& offsets,
                                           const std::vector<channel_id>& from, const std::vector<channel_id>& to) {
  if (offsets.size() != from.size() || from.size() != to.size())
    return std::nullopt;
  payload out;
  out.reserve(args.size() + 8 * to.size());
  postcard::writer w{out};
  size_t pos = 0;
  for (size_t i = 0; i < offsets.size(); ++i) {
    size_t at = offsets[i];
    if (at < pos || at >= args.size())
      return std::nullopt;
    postcard::reader r{byte_span{args.data() + at, args.size() - at}};
    uint64_t id = 0;
    if (!r.varint(id) || id != from[i])
      return std::nullopt;
    out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(pos), args.begin() + static_cast<std::ptrdiff_t>(at));
    w.varint(to[i]);
    pos = at + r.position();
  }
  out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(pos), args.end());
  return out;
}

} // namespace vox::detail
