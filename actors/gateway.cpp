#include "actors/gateway.hpp"

#include <mutex>
#include <vector>

#include <caf/blocking_actor.hpp>
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

namespace {

/// One downstream session of a per-session forwarder, and its upstream once dialled.
struct forwarded_session {
  std::mutex mtx;
  std::optional<session_actor> upstream;
  bool failed = false;
  /// Virtual connections accepted before the upstream was there: opened on it then.
  struct waiting_open {
    connection_splice splice;
    connection_settings settings;
    metadata md;
  };
  std::vector<waiting_open> waiting;
};

/// Dials the upstream of one forwarded session (on a detached actor: it blocks), then
/// hands it to the splices. Arguments, not captures: CAF 0.17 dereferences a null
/// argument tuple for function actors spawned without arguments.
void dial_upstream(caf::blocking_actor*, std::shared_ptr<forwarded_session> fwd, upstream_dialer dial,
                   connection_splice root, connection_settings client, session_actor down) {
  auto up = dial(client);
  std::vector<forwarded_session::waiting_open> waiting;
  {
    std::lock_guard<std::mutex> guard{fwd->mtx};
    if (up)
      fwd->upstream = up->actor;
    else
      fwd->failed = true;
    waiting.swap(fwd->waiting);
  }
  if (!up || !root.attach(up->root)) {
    root.stop();
    for (auto& w : waiting)
      w.splice.stop();
    caf::anon_send(down, stop_atom::value);
    return;
  }
  for (auto& w : waiting)
    if (!w.splice.open(up->actor, w.settings, std::move(w.md)))
      w.splice.stop();
}

} // namespace

void forward_sessions(caf::actor_system& sys, session_server::config& cfg, upstream_dialer dial,
                      std::function<void(const std::string&)> splice_log) {
  if (!splice_log)
    splice_log = [](const std::string&) {};
  cfg.customize = [&sys, dial, splice_log](session_options& opts) -> std::function<void(const session_handle&)> {
    auto fwd = std::make_shared<forwarded_session>();
    opts.acceptor = [&sys, fwd, splice_log](connection_id, const connection_settings& peer, const metadata& md)
      -> std::variant<accept_connection, reject_connection> {
      auto splice = connection_splice::make(sys, splice_log);
      auto yes = splice.accept(peer);
      if (!yes)
        return reject_connection{};
      std::lock_guard<std::mutex> guard{fwd->mtx};
      if (fwd->failed) {
        splice.stop();
        return reject_connection{};
      }
      if (!fwd->upstream)
        fwd->waiting.push_back({splice, peer, md});
      else if (!splice.open(*fwd->upstream, peer, md))
        splice.stop();
      return std::move(*yes);
    };
    return [&sys, fwd, dial, splice_log](const session_handle& h) {
      auto root = connection_splice::make(sys, splice_log);
      if (!root.attach(h.root)) {
        caf::anon_send(h.actor, stop_atom::value);
        return;
      }
      // The handshake blocks: a detached actor (a thread the actor system waits for)
      // dials, then hands the upstream session to the splices.
      sys.spawn<caf::detached>(dial_upstream, fwd, dial, root, h.handshake.peer_settings, h.actor);
    };
  };
}

} // namespace vox
