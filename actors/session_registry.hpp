// Resumable acceptor sessions by their current resume key (session-behaviours.md §2.1).
#pragma once

#include <array>
#include <map>
#include <mutex>

#include <caf/weak_intrusive_ptr.hpp>

#include "actors/interfaces.hpp"

namespace vox {

/// Where a resumable acceptor session can be found by the key a reconnecting initiator
/// presents. Sessions keep their own entry current: they register when they start,
/// re-key on every resume (the acceptor issues a fresh key each time; the reference does
/// not re-key, pitfall 6) and leave when they end, so the registry never holds an ended
/// session. Shared by the I/O threads that run handshakes and by the sessions: a mutex.
class session_registry {
public:
  using key = std::array<uint8_t, session_resume_key_size>;

  void insert(const key& k, const session_actor& session);
  /// `session` now answers to `fresh` instead of `old`.
  void rekey(const key& old, const key& fresh, const session_actor& session);
  /// Removes `k` if it still names `session`.
  void erase(const key& k, const session_actor& session);
  /// The live session registered under `k` (null if none, or if it ended).
  session_actor find(byte_span k) const;
  size_t size() const;

private:
  mutable std::mutex mtx_;
  std::map<key, caf::weak_actor_ptr> sessions_;
};

} // namespace vox
