// The acceptor's stable conduits by their current key, so that a reconnecting
// ClientHello finds the conduit it belongs to (r[stable.reconnect]).
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "transport/stable_link.hpp"

namespace vox {

/// Holds conduits weakly: one that ended (its session gone) drops out by itself.
class stable_registry {
public:
  void insert(const stable::key& k, const std::shared_ptr<stable_link>& s);
  /// The live conduit under `k`, if any.
  std::shared_ptr<stable_link> find(const stable::key& k);
  /// The conduit under `from` is now under `to` (its key rotates on every reconnect).
  void rekey(const stable::key& from, const stable::key& to);
  size_t size();

private:
  void prune_locked();

  std::mutex mtx_;
  std::map<stable::key, std::weak_ptr<stable_link>> by_key_;
  size_t prune_at_ = 64;
};

} // namespace vox
