#include "actors/session_registry.hpp"

#include <algorithm>

#include <caf/actor_cast.hpp>

namespace vox {

void session_registry::insert(const key& k, const session_actor& session) {
  std::lock_guard<std::mutex> guard{mtx_};
  sessions_[k] = caf::actor_cast<caf::weak_actor_ptr>(session);
}

void session_registry::rekey(const key& old, const key& fresh, const session_actor& session) {
  std::lock_guard<std::mutex> guard{mtx_};
  sessions_.erase(old);
  sessions_[fresh] = caf::actor_cast<caf::weak_actor_ptr>(session);
}

void session_registry::erase(const key& k, const session_actor& session) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = sessions_.find(k);
  if (i != sessions_.end() && i->second == caf::actor_cast<caf::weak_actor_ptr>(session))
    sessions_.erase(i);
}

session_actor session_registry::find(byte_span k) const {
  if (k.size() != session_resume_key_size)
    return {};
  key wanted;
  std::copy(k.begin(), k.end(), wanted.begin());
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = sessions_.find(wanted);
  if (i == sessions_.end())
    return {};
  return caf::actor_cast<session_actor>(i->second.lock());
}

size_t session_registry::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return sessions_.size();
}

} // namespace vox
