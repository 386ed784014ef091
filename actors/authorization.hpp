// Who may use a session: an acceptor-side authorize hook, per-method checks for typed
// services, and bearer tokens carried as SENSITIVE metadata (README "Deployment and
// security").
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/handles.hpp"
#include "transport/link.hpp"

namespace vox {

/// What `session_options::authorize` is asked about.
struct authorize_request {
  enum class kind {
    root_call,      ///< the root connection's first call (`method_id`, its metadata)
    connection_open ///< a ConnectionOpen from the peer (its metadata)
  };
  kind what = kind::root_call;
  const link_peer* peer = nullptr; ///< the address, and the TLS identity if any
  connection_id connection = 0;
  method_id_t method_id = 0; ///< root_call only
  const vox::metadata* metadata = nullptr;
};

/// The answer: allowed, or refused with a reason the caller is told (never echo a
/// credential in it) and metadata for a ConnectionReject.
struct authorization {
  bool allowed = true;
  std::string reason;
  vox::metadata metadata;

  static authorization allow() { return {}; }
  static authorization refuse(std::string why, vox::metadata md = {}) { return {false, std::move(why), std::move(md)}; }
};

/// Runs inside the session (opens) or the root's driver (the first root call): must not
/// block.
using authorizer = std::function<authorization(const authorize_request&)>;

/// A check on one call before its handler runs: nullopt lets it through, a string refuses
/// it with that reason.
using call_check = std::function<std::optional<std::string>(const incoming_call&)>;

/// The answer a refused call gets: `Err(VoxError::InvalidPayload("unauthorized: <reason>"))`
/// with response metadata `vox-error` = "unauthorized".
void refuse_call(reply_sink& sink, const std::string& reason);

/// The metadata key a bearer token travels in: `authorization` = "Bearer <token>".
inline constexpr const char* authorization_key = "authorization";

/// The entry that carries `token`: flagged SENSITIVE, so that no vox-caf log or vox-dump
/// line shows it, and NO_PROPAGATE, so that a gateway does not pass it on.
metadata_entry bearer_metadata(const std::string& token);

/// Checks metadata for `token` (in constant time): nullopt when it is there, else
/// "missing bearer token" or "wrong bearer token".
std::function<std::optional<std::string>(const vox::metadata&)> bearer_token(std::string token);

/// An authorizer that lets in a root's first call and an open whose metadata carries
/// `token`.
authorizer require_bearer_token(std::string token);

/// A call_check from a metadata check such as `bearer_token`.
call_check check_metadata(std::function<std::optional<std::string>(const vox::metadata&)> check);

namespace detail {
/// Gives `options`' handlers the peer (incoming_call::peer) and puts `options.authorize`
/// in front of its root handler and acceptor. Called once per session, at its start.
struct session_options_view {
  call_handler* root_handler;
  connection_acceptor* acceptor;
  const authorizer* authorize;
};
void guard_session(session_options_view options, std::shared_ptr<const link_peer> peer);
} // namespace detail

} // namespace vox
