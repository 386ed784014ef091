#include "actors/channel.hpp"

namespace vox::detail {

namespace {

// r[impl rpc.flow-control.credit.grant]
uint32_t grant_batch(uint32_t initial) { return std::max<uint32_t>(initial / 2, 1); }

} // namespace

channel_binder*& current_binder() {
  thread_local channel_binder* binder = nullptr;
  return binder;
}

void channel_core::bind(channel_id id, std::shared_ptr<channel_registry> registry, bool local_receives,
                        bool active) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    id_ = id;
    registry_ = std::move(registry);
    local_receives_ = local_receives;
    active_ = active;
  }
  cv_.notify_all();
}

void channel_core::activate() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    active_ = true;
  }
  cv_.notify_all(); // ends used before their call went out wait for this
}

bool channel_core::bound() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return registry_ != nullptr;
}

channel_id channel_core::id() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return id_;
}

bool channel_core::write(channel_body p) {
  // Called without mtx_ held: the link may block, and the driver must stay free to
  // deliver grants meanwhile.
  std::shared_ptr<channel_registry> reg;
  channel_id id;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    reg = registry_;
    id = id_;
  }
  return reg && reg->write(id, std::move(p));
}

caf::expected<void> channel_core::send(payload item, std::optional<std::chrono::steady_clock::time_point> deadline) {
  {
    std::unique_lock<std::mutex> guard{mtx_};
    // r[impl rpc.flow-control.credit.exhaustion]
    auto ready = [this] { return (active_ && credit_ > 0) || closed_ || reset_ || failure_; };
    if (deadline) {
      if (!cv_.wait_until(guard, *deadline, ready))
        return make_error(errc::timeout, active_ ? "no channel credit before the deadline"
                                                 : "the channel's call did not go out before the deadline");
    } else {
      cv_.wait(guard, ready);
    }
    if (failure_)
      return failure_;
    if (reset_)
      return make_error(errc::closed, "channel was reset");
    if (closed_)
      return make_error(errc::closed, "channel is closed");
    --credit_;
  }
  // r[impl rpc.channel.item]
  if (!write(channel_item{std::move(item)}))
    return make_error(errc::io_error, "sending the channel item failed");
  return {};
}

void channel_core::close(vox::metadata md) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!registry_ || closed_ || reset_ || failure_ || local_receives_)
      return;
    closed_ = true;
  }
  cv_.notify_all();
  // r[impl rpc.channel.close]
  write(channel_close{std::move(md)});
  std::shared_ptr<channel_registry> reg;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    reg = registry_;
  }
  reg->remove(id());
}

void channel_core::reset(vox::metadata md) {
  std::shared_ptr<channel_registry> reg;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!registry_ || reset_ || failure_ || (closed_ && !local_receives_))
      return;
    reset_ = true;
    reg = registry_;
  }
  cv_.notify_all();
  // r[impl rpc.channel.reset]
  write(channel_reset{std::move(md)});
  reg->remove(id());
}

caf::expected<std::optional<payload>> channel_core::recv(std::optional<std::chrono::steady_clock::time_point> deadline) {
  payload item;
  uint32_t grant = 0;
  {
    std::unique_lock<std::mutex> guard{mtx_};
    auto ready = [this] { return (registry_ && !items_.empty()) || closed_ || reset_ || failure_; };
    if (deadline) {
      if (!cv_.wait_until(guard, *deadline, ready))
        return make_error(errc::timeout, "no channel item before the deadline");
    } else {
      cv_.wait(guard, ready);
    }
    if (items_.empty()) {
      if (failure_)
        return failure_;
      if (reset_)
        return make_error(errc::closed, "channel was reset");
      return std::optional<payload>{};
    }
    item = std::move(items_.front());
    items_.pop_front();
    // Credit goes back in batches as the application consumes items.
    if (++consumed_ >= grant_batch(initial_credit_) && !closed_ && !reset_ && !failure_) {
      grant = consumed_;
      consumed_ = 0;
      credit_ += grant;
    }
  }
  if (grant > 0)
    write(channel_grant_credit{grant});
  return std::optional<payload>{std::move(item)};
}

bool channel_core::on_item(payload item) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!local_receives_ || closed_ || reset_)
      return true;
    // r[impl rpc.flow-control.credit.exhaustion]
    // A receiving end's credit_ is what the peer may still send: initial plus granted,
    // minus received. Past it the peer is buffering into us unasked.
    if (credit_ == 0)
      return false;
    --credit_;
    items_.push_back(std::move(item));
  }
  cv_.notify_all();
  return true;
}

void channel_core::on_close() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
  }
  cv_.notify_all();
}

void channel_core::on_reset() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    reset_ = true;
  }
  cv_.notify_all();
}

// r[impl rpc.flow-control.credit.grant]
void channel_core::on_grant(uint32_t additional) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (local_receives_)
      return;
    credit_ += additional;
  }
  cv_.notify_all();
}

void channel_core::on_connection_closed(caf::error reason) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!failure_)
      failure_ = std::move(reason);
  }
  cv_.notify_all();
}

channel_id channel_registry::allocate() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto id = next_id_;
  next_id_ += 2;
  return id;
}

bool channel_registry::add(channel_id id, std::shared_ptr<channel_core> core) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_ || id == 0)
    return false;
  return cores_.emplace(id, std::move(core)).second;
}

void channel_registry::remove(channel_id id) {
  std::lock_guard<std::mutex> guard{mtx_};
  cores_.erase(id);
}

std::shared_ptr<channel_core> channel_registry::find(channel_id id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = cores_.find(id);
  return i == cores_.end() ? nullptr : i->second;
}

void channel_registry::close_all(const caf::error& reason) {
  std::unordered_map<channel_id, std::shared_ptr<channel_core>> cores;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
    cores.swap(cores_);
  }
  for (auto& [id, core] : cores)
    core->on_connection_closed(reason);
}

bool channel_registry::write(channel_id id, channel_body body) {
  return static_cast<bool>(conduit_->send(message{conn_, channel_message{id, std::move(body)}}));
}

void write_channel(postcard::writer& w, const std::shared_ptr<channel_core>& core, bool local_receives) {
  auto* binder = current_binder();
  if (binder == nullptr || !binder->registry || !core || core->bound()) {
    // Not inside a call's encoding, or the end was already used in another call.
    if (binder != nullptr)
      binder->failed = true;
    w.varint(0);
    return;
  }
  auto id = binder->registry->allocate();
  core->bind(id, binder->registry, local_receives, false);
  binder->registry->add(id, core);
  binder->bound.push_back(core);
  w.varint(id);
}

bool read_channel(postcard::reader& r, std::shared_ptr<channel_core>& core, bool local_receives,
                  uint32_t initial_credit) {
  uint64_t id = 0;
  if (!r.varint(id))
    return false;
  auto* binder = current_binder();
  if (binder == nullptr || !binder->registry)
    return r.fail(errc::invalid_value, "a channel argument outside of a call");
  core = std::make_shared<channel_core>(initial_credit);
  core->bind(id, binder->registry, local_receives, true);
  if (!binder->registry->add(id, core))
    return r.fail(errc::invalid_value, "channel id " + std::to_string(id) + " is 0 or already in use");
  return true;
}

} // namespace vox::detail
