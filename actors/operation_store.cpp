#include "actors/operation_store.hpp"

#include <algorithm>

namespace vox {

std::optional<uint64_t> operation_id_of(const vox::metadata& md) {
  for (const auto& e : md)
    if (e.key == operation_id_key)
      if (const auto* v = std::get_if<uint64_t>(&e.value))
        return *v;
  return std::nullopt;
}

channel_retry_mode channel_retry_mode_of(const vox::metadata& md) {
  for (const auto& e : md)
    if (e.key == channel_retry_mode_key)
      if (const auto* v = std::get_if<uint64_t>(&e.value); v && (*v == 1 || *v == 2))
        return static_cast<channel_retry_mode>(*v);
  return channel_retry_mode::none;
}

namespace detail {

namespace {

size_t size_of(const operation_store::outcome& o) {
  size_t n = o.ret.size() + 64;
  for (const auto& e : o.metadata)
    n += e.key.size() + 32
         + std::visit([](const auto& v) -> size_t {
             if constexpr (std::is_same_v<std::decay_t<decltype(v)>, uint64_t>)
               return 8;
             else
               return v.size();
           },
                      e.value);
  return n;
}

} // namespace

// r[impl retry.duplicate.live.attach]
// r[impl retry.duplicate.sealed]
operation_store::verdict operation_store::admit(uint64_t op, request_id id, method_id_t method) {
  if (auto l = live_.find(op); l != live_.end()) {
    auto& lo = l->second;
    if (lo.method != method)
      return verdict::conflict;
    if (lo.owner == id || std::find(lo.waiters.begin(), lo.waiters.end(), id) != lo.waiters.end())
      return verdict::duplicate;
    lo.waiters.push_back(id);
    op_of_waiter_[id] = op;
    return verdict::attached;
  }
  if (auto s = sealed_.find(op); s != sealed_.end())
    return s->second.method == method ? verdict::replay : verdict::conflict;
  if (auto e = evicted_.find(op); e != evicted_.end())
    return e->second == method ? verdict::indeterminate : verdict::conflict;
  live_.emplace(op, live_op{id, method, {}});
  op_of_owner_[id] = op;
  return verdict::start;
}

const operation_store::outcome* operation_store::sealed(uint64_t op) const {
  auto s = sealed_.find(op);
  return s == sealed_.end() ? nullptr : &s->second;
}

std::vector<request_id> operation_store::seal(request_id id, const outcome& answer) {
  auto o = op_of_owner_.find(id);
  if (o == op_of_owner_.end())
    return {};
  auto op = o->second;
  op_of_owner_.erase(o);
  auto waiters = end_live(op);
  bytes_ += size_of(answer);
  sealed_.emplace(op, answer);
  order_.push_back(op);
  evict();
  return waiters;
}

std::vector<request_id> operation_store::forget(request_id id) {
  auto o = op_of_owner_.find(id);
  if (o == op_of_owner_.end())
    return {};
  auto waiters = end_live(o->second);
  op_of_owner_.erase(o);
  return waiters;
}

bool operation_store::detach(request_id id) {
  auto w = op_of_waiter_.find(id);
  if (w == op_of_waiter_.end())
    return false;
  auto& waiters = live_.at(w->second).waiters;
  waiters.erase(std::find(waiters.begin(), waiters.end(), id));
  op_of_waiter_.erase(w);
  return true;
}

std::vector<request_id> operation_store::end_live(uint64_t op) {
  auto l = live_.find(op);
  auto waiters = std::move(l->second.waiters);
  live_.erase(l);
  for (auto w : waiters)
    op_of_waiter_.erase(w);
  return waiters;
}

std::vector<request_id> operation_store::release(request_id id, bool idempotent) {
  auto o = op_of_owner_.find(id);
  if (o == op_of_owner_.end())
    return {};
  auto op = o->second;
  auto method = live_.at(op).method;
  auto waiters = forget(id);
  if (!idempotent) {
    evicted_.emplace(op, method);
    evicted_order_.push_back(op);
    evict();
  }
  return waiters;
}

void operation_store::evict() {
  while (!order_.empty() && (sealed_.size() > limits_.max_sealed || bytes_ > limits_.max_sealed_bytes)) {
    auto op = order_.front();
    order_.pop_front();
    auto s = sealed_.find(op);
    bytes_ -= size_of(s->second);
    evicted_.emplace(op, s->second.method);
    evicted_order_.push_back(op);
    sealed_.erase(s);
  }
  // Remembering an evicted id costs a few bytes; still, not forever.
  while (evicted_order_.size() > 16 * limits_.max_sealed) {
    evicted_.erase(evicted_order_.front());
    evicted_order_.pop_front();
  }
}

} // namespace detail
} // namespace vox
