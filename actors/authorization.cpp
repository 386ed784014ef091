#include "actors/authorization.hpp"

#include "protocol/result.hpp"

namespace vox {

void refuse_call(reply_sink& sink, const std::string& reason) {
  sink.reply(invalid_payload_response("unauthorized: " + reason),
             {metadata_entry{"vox-error", std::string{"unauthorized"}, metadata_flags::none}});
}

metadata_entry bearer_metadata(const std::string& token) {
  return metadata_entry{authorization_key, "Bearer " + token, metadata_flags::sensitive | metadata_flags::no_propagate};
}

namespace {

/// Equal strings, in time that depends on their lengths only (a token's length is not
/// what an attacker would learn one byte at a time).
bool same(const std::string& a, const std::string& b) {
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

} // namespace

std::function<std::optional<std::string>(const vox::metadata&)> bearer_token(std::string token) {
  return [expected = "Bearer " + token](const vox::metadata& md) -> std::optional<std::string> {
    for (const auto& e : md) {
      if (e.key != authorization_key)
        continue;
      const auto* text = std::get_if<std::string>(&e.value);
      if (text == nullptr)
        return "wrong bearer token";
      if (!same(*text, expected))
        return "wrong bearer token";
      return std::nullopt;
    }
    return "missing bearer token";
  };
}

authorizer require_bearer_token(std::string token) {
  return [check = bearer_token(std::move(token))](const authorize_request& r) {
    if (auto why = check(*r.metadata))
      return authorization::refuse(*why);
    return authorization::allow();
  };
}

call_check check_metadata(std::function<std::optional<std::string>(const vox::metadata&)> check) {
  return [check = std::move(check)](const incoming_call& in) { return check(in.metadata); };
}

namespace detail {

namespace {

/// Serves the root: the first call decides, for this session, whether any call runs.
/// Runs in the root's driver only, one call at a time.
struct root_gate {
  enum class state { undecided, allowed, refused } decided = state::undecided;
  std::string reason;
};

call_handler with_peer(call_handler inner, std::shared_ptr<const link_peer> peer) {
  if (!inner)
    return inner;
  return [inner = std::move(inner), peer = std::move(peer)](incoming_call in, reply_sink sink) {
    in.peer = peer;
    inner(std::move(in), std::move(sink));
  };
}

} // namespace

void guard_session(session_options_view options, std::shared_ptr<const link_peer> peer) {
  auto& root = *options.root_handler;
  auto& acceptor = *options.acceptor;
  const auto& authorize = *options.authorize;
  if (!authorize) {
    root = with_peer(std::move(root), peer);
    if (acceptor)
      acceptor = [inner = std::move(acceptor), peer](connection_id id, const connection_settings& s,
                                                      const vox::metadata& md)
        -> std::variant<accept_connection, reject_connection> {
        auto out = inner(id, s, md);
        if (auto* yes = std::get_if<accept_connection>(&out))
          yes->handler = with_peer(std::move(yes->handler), peer);
        return out;
      };
    return;
  }
  auto gate = std::make_shared<root_gate>();
  root = [inner = with_peer(std::move(root), peer), authorize, peer, gate](incoming_call in, reply_sink sink) {
    if (gate->decided == root_gate::state::undecided) {
      authorize_request r{authorize_request::kind::root_call, peer.get(), 0, in.method_id, &in.metadata};
      auto verdict = authorize(r);
      gate->decided = verdict.allowed ? root_gate::state::allowed : root_gate::state::refused;
      gate->reason = std::move(verdict.reason);
    }
    if (gate->decided == root_gate::state::refused) {
      refuse_call(sink, gate->reason);
      return;
    }
    if (inner)
      inner(std::move(in), std::move(sink));
    else
      sink.reply(unknown_method_response());
  };
  acceptor = [inner = std::move(acceptor), authorize, peer](connection_id id, const connection_settings& s,
                                                             const vox::metadata& md)
    -> std::variant<accept_connection, reject_connection> {
    authorize_request r{authorize_request::kind::connection_open, peer.get(), id, 0, &md};
    auto verdict = authorize(r);
    if (!verdict.allowed) {
      auto meta = std::move(verdict.metadata);
      meta.push_back(metadata_entry{"vox-error", "unauthorized: " + verdict.reason, metadata_flags::none});
      return reject_connection{std::move(meta)};
    }
    if (!inner)
      return reject_connection{};
    auto out = inner(id, s, md);
    if (auto* yes = std::get_if<accept_connection>(&out))
      yes->handler = with_peer(std::move(yes->handler), peer);
    return out;
  };
}

} // namespace detail

} // namespace vox
