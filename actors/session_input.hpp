// The inbound side of a session: what a started link hands its frames to.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <caf/actor_addr.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include "actors/interfaces.hpp"
#include "transport/link.hpp"

namespace vox {

namespace detail {

/// Which driver serves each active connection of a session, so that the link's input can
/// hand a Request or a Channel message straight to it: one actor hop instead of two
/// (session, then driver) on every call's way in, and on its Response's.
///
/// The session is the only writer; the input of one link is the only reader. Order per
/// connection holds because the input takes the short path only while the session is
/// idle (nothing the application sent it, such as a splice, is waiting) and has handled
/// every Message the input gave it: whatever the session forwards to a driver (a Request
/// that followed an Open at once) is in the driver's mailbox before anything the input
/// sends it directly, and what a Close, a splice or a dead driver removed is no longer
/// found. The count is what keeps the wire order should the session ever leave a
/// Message in its mailbox while it waits for something else. A map under a mutex rather
/// than an immutable snapshot per change: one hash lookup per frame either way, and
/// opening or closing a connection stays O(1) instead of copying the whole table.
class inbound_routes {
public:
  // -- the session's side --

  /// From the next Message on, `id` goes straight to `driver`.
  void add(connection_id id, const driver_actor& driver);
  void remove(connection_id id);
  /// Everything goes through the session (it ended, or a resume replaced this link).
  void clear();
  /// The session handled one more of the Messages this input gave it (its effects on the
  /// table are in place).
  void handled() noexcept { handled_.fetch_add(1, std::memory_order_release); }

  // -- the input's side --

  /// The driver that may take a Request or Channel message for `id` directly, once the
  /// session has handled all `given` Messages the input gave it; else none.
  driver_actor find(connection_id id, uint64_t given) const;

private:
  std::atomic<uint64_t> handled_{0};
  mutable std::mutex mtx_;
  std::unordered_map<connection_id, driver_actor> drivers_;
};

} // namespace detail

/// Decodes each frame into a Message on the thread that read it. A Request or Channel
/// message for an established connection goes straight to its driver when the routes
/// allow it (`inbound_routes`); everything else is enqueued into the session's mailbox. Both with that thread's
/// execution unit, so that on an I/O thread the receiver runs right there. Holds the
/// session weakly: a link outlives its session while it flushes, and must not keep the
/// actor alive.
class session_input final : public link_receiver {
public:
  /// `epoch` tags everything this input delivers (0 for a session's first link; a fresh
  /// `next_epoch()` for every link a resume brings). `routes` are the session's for this
  /// link (it handles them from `attach_root_msg` or `resume_msg` on).
  session_input(const session_actor& session, std::shared_ptr<const detail::inbound_routes> routes,
                uint64_t epoch = 0);

  /// A tag no link of any session has used before.
  static uint64_t next_epoch();

  void on_frame(byte_span payload, caf::execution_unit* ctx) override;
  void on_end(caf::error reason, caf::execution_unit* ctx) override;

private:
  template <class T>
  void deliver(T&& x, caf::execution_unit* ctx);

  caf::weak_actor_ptr session_;
  std::shared_ptr<const detail::inbound_routes> routes_;
  uint64_t epoch_;
  /// Messages given to the session so far (compared with what it handled).
  uint64_t given_ = 0;
  /// Set after the first undecodable frame: the session is ending, the rest is noise.
  bool failed_ = false;
};

} // namespace vox
