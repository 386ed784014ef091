// What the session actor's parts (session_actor.cpp, session_resume.cpp) call in each other.
#pragma once

#include "actors/session_actor.hpp"

namespace vox::detail {

/// Ends the session: every connection closes, every driver exits, the link closes.
void end_session(session_pointer self, caf::error reason);

/// Spawns the keepalive monitor (monitored) with the session's options.
void start_keepalive(session_pointer self);

// -- resumption (session_resume.cpp) ----------------------------------------------------

/// True if a link break leaves this session waiting for a resume instead of ending it.
bool can_resume(const session_state& st);
/// An acceptor session enters the registry under its key (when it has both).
void register_resumable(session_pointer self);
/// The session ends: leave the registry, stop reconnecting.
void forget_resumption(session_pointer self);
/// The link broke: wait for a resume (reconnecting by ourselves if we can), within
/// `resume_timeout`.
void disconnect(session_pointer self, caf::error reason);
caf::result<caf::ok_atom> resume(session_pointer self, resume_msg& m);
void resume_deadline(session_pointer self, uint64_t serial);
void reconnect_failed(session_pointer self, const caf::error& reason);

} // namespace vox::detail
