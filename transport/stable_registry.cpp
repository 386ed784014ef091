#include "transport/stable_registry.hpp"

namespace vox {

void stable_registry::insert(const stable::key& k, const std::shared_ptr<stable_link>& s) {
  std::lock_guard<std::mutex> guard{mtx_};
  by_key_[k] = s;
  if (by_key_.size() >= prune_at_)
    prune_locked();
}

std::shared_ptr<stable_link> stable_registry::find(const stable::key& k) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_key_.find(k);
  if (i == by_key_.end())
    return nullptr;
  auto s = i->second.lock();
  if (!s)
    by_key_.erase(i);
  return s;
}

void stable_registry::rekey(const stable::key& from, const stable::key& to) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_key_.find(from);
  if (i == by_key_.end())
    return;
  auto s = std::move(i->second);
  by_key_.erase(i);
  by_key_[to] = std::move(s);
}

size_t stable_registry::size() {
  std::lock_guard<std::mutex> guard{mtx_};
  prune_locked();
  return by_key_.size();
}

void stable_registry::prune_locked() {
  std::erase_if(by_key_, [](const auto& kv) { return kv.second.expired(); });
  // Amortised: prune again once the live entries have doubled.
  prune_at_ = std::max<size_t>(64, 2 * by_key_.size());
}

} // namespace vox
