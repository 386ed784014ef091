// The inbound side of a session: what a started link hands its frames to.
#pragma once

#include <caf/actor_addr.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include "actors/interfaces.hpp"
#include "transport/link.hpp"

namespace vox {

/// Decodes each frame into a Message on the thread that read it and enqueues it into the
/// session's mailbox with that thread's execution unit, so that on an I/O thread the
/// session runs right there. Holds the session weakly: a link outlives its session while
/// it flushes, and must not keep the actor alive.
class session_input final : public link_receiver {
public:
  /// `epoch` tags everything this input delivers (0 for a session's first link; a fresh
  /// `next_epoch()` for every link a resume brings).
  explicit session_input(const session_actor& session, uint64_t epoch = 0);

  /// A tag no link of any session has used before.
  static uint64_t next_epoch();

  void on_frame(byte_span payload, caf::execution_unit* ctx) override;
  void on_end(caf::error reason, caf::execution_unit* ctx) override;

private:
  template <class T>
  void deliver(T&& x, caf::execution_unit* ctx);

  caf::weak_actor_ptr session_;
  uint64_t epoch_;
  /// Set after the first undecodable frame: the session is ending, the rest is noise.
  bool failed_ = false;
};

} // namespace vox
