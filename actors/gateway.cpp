#include "actors/gateway.hpp"

#include <caf/send.hpp>

namespace vox {

void forward_connections(caf::actor_system& sys, session_server::config& cfg, upstream_source upstream,
                         std::function<void(const std::string&)> splice_log) {
  if (!splice_log)
    splice_log = [](const std::string&) {};
  // The root is spliced before the session reads anything, so no call of the client's
  // is served by anyone but the upstream peer.
  cfg.on_session = [&sys, upstream, splice_log, first = std::move(cfg.on_session)](const session_handle& h) {
    if (first)
      first(h);
    auto splice = connection_splice::make(sys, splice_log);
    auto target = upstream();
    // Upstream we take the client's parity (ids pass through) and let the upstream peer
    // make as many calls at once as the client lets us make.
    if (!target || !splice.attach(h.root) || !splice.open(*target, h.handshake.peer_settings)) {
      splice.stop();
      caf::anon_send(h.actor, stop_atom::value);
    }
  };
  cfg.options.acceptor = [&sys, upstream, splice_log](connection_id, const connection_settings& peer,
                                                      const metadata& md)
    -> std::variant<accept_connection, reject_connection> {
    auto target = upstream();
    if (!target)
      return reject_connection{{{"vox-error", std::string{"no upstream session"}, metadata_flags::none}}};
    auto splice = connection_splice::make(sys, splice_log);
    auto yes = splice.accept(peer);
    if (!yes || !splice.open(*target, peer, md)) {
      splice.stop();
      return reject_connection{};
    }
    return std::move(*yes);
  };
}

} // namespace vox
