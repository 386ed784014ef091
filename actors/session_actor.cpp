#include "actors/session_actor.hpp"

#include <iostream>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/driver_actor.hpp"
#include "actors/keepalive_actor.hpp"
#include "actors/proxy.hpp"
#include "actors/session_input.hpp"
#include "actors/session_ops.hpp"

namespace vox {

log_sink log_sink_of(const session_options& options) {
  if (options.log)
    return std::make_shared<const std::function<void(const std::string&)>>(options.log);
  return std::make_shared<const std::function<void(const std::string&)>>(
    [](const std::string& line) { std::cerr << "vox: " << line << '\n'; });
}

session_state::~session_state() {
  // A session that dies without end_session (killed) still lets its link finish.
  if (conduit)
    conduit->close();
}

namespace {

bool send(session_pointer self, connection_id id, message_payload p) {
  return static_cast<bool>(self->state.conduit->send(message{id, std::move(p)}, self->context()));
}

connection_handle handle_of(session_pointer self, connection_id id, const connection_slot& s) {
  return connection_handle{id, caf::actor_cast<session_actor>(self), s.driver, s.local_settings,
                           s.peer_settings, s.callers, s.channels};
}

/// Tells a connection's driver (or its pending opener) that the connection is gone, and
/// lets go of the driver.
void retire(session_pointer self, connection_id id, connection_slot& slot, const caf::error& reason) {
  if (slot.pending) {
    slot.open_promise.deliver(reason);
    return;
  }
  self->state.connection_of_driver.erase(slot.driver.id());
  // It ends on our word: its down message would tell us nothing, and make on_down search
  // the table for it. A splice may still serve another connection of ours.
  if (!slot.spliced)
    self->demonitor(slot.driver.address());
  // Sent from this actor's execution unit: on an I/O thread the driver runs right there.
  self->send(slot.driver, connection_closed_msg{reason, id});
}

/// Routes `id` to `proxy` from the next Message on (monitored: its exit closes the
/// connection, behaviour 113). A driver that served the connection until now exits.
// r[impl connection.close.semantics]
void splice_connection(session_pointer self, connection_id id, connection_slot& slot, proxy_actor proxy) {
  auto& st = self->state;
  st.routes->remove(id); // the splice tells its two sides apart by sender: through us
  if (slot.driver) // none yet when the connection opens into the splice
    retire(self, id, slot, make_error(errc::connection_closed, "the connection was spliced"));
  slot.driver = caf::actor_cast<driver_actor>(proxy);
  slot.spliced = true;
  slot.pending = false;
  slot.channels.reset();
  self->monitor(proxy);
  self->send(proxy, spliced_msg{id, caf::error{}, st.conduit, slot.local_settings, slot.peer_settings,
                                st.conduit->generation(), detail::can_resume(st)});
}

/// Makes `slot` active with a fresh driver (monitored: its exit removes the connection),
/// or with `splice` when one is set.
void activate(session_pointer self, connection_id id, connection_slot& slot, call_handler handler,
              proxy_actor splice = {}) {
  if (splice) {
    splice_connection(self, id, slot, std::move(splice));
    return;
  }
  // r[impl rpc.channel.binding]
  slot.channels = std::make_shared<detail::channel_context>(id, slot.local_settings.parity, self->state.conduit,
                                                            self->system());
  driver_config cfg{id,
                    slot.local_settings,
                    slot.peer_settings,
                    self->state.conduit,
                    caf::actor_cast<session_actor>(self),
                    std::move(handler),
                    slot.channels,
                    self->state.log_to,
                    self->state.handshake.peer_supports_retry,
                    self->state.options.retry ? std::optional{self->state.options.operation_limits} : std::nullopt};
  slot.driver = self->spawn<caf::monitored>(driver_behavior, std::move(cfg));
  self->state.connection_of_driver[slot.driver.id()] = id;
  self->state.routes->add(id, slot.driver);
  slot.pending = false;
  if (!slot.callers)
    slot.callers = std::make_shared<detail::caller_registry>();
}

using detail::end_session;

/// Behaviour 91: the session ends once the root is closed internally and no virtual
/// connection (pending ones included, 90) remains.
// r[impl rpc.caller.liveness]
void check_root_teardown(session_pointer self) {
  auto& st = self->state;
  if (!st.root_closed)
    return;
  for (auto& [id, slot] : st.connections)
    if (id != 0)
      return;
  end_session(self, caf::error{});
}

} // namespace

void detail::end_session(session_pointer self, caf::error reason) {
  auto& st = self->state;
  if (st.ended)
    return;
  st.ended = true;
  detail::forget_resumption(self);
  // Behaviour 30: every connection closes and every driver exits; no ConnectionClose.
  auto shutdown = make_error(errc::session_shutdown,
                             reason ? "session ended: " + describe(reason) : "session ended");
  for (auto& [id, slot] : st.connections)
    retire(self, id, slot, shutdown);
  st.connections.clear();
  st.connection_of_driver.clear();
  st.routes->clear();
  // The peer sees end of stream after what we already queued; the link then waits (at
  // most its stall timeout) for the peer to close its side.
  st.conduit->close();
  self->quit(std::move(reason));
}

namespace {

/// One path for every protocol violation: tell the peer on connection 0, then end.
void fail_protocol(session_pointer self, const std::string& what) {
  // r[impl session.protocol-error]
  send(self, 0, protocol_error{what});
  end_session(self, make_error(errc::protocol_violation, what));
}

void close_connection(session_pointer self, connection_id id, const caf::error& reason) {
  auto& st = self->state;
  auto i = st.connections.find(id);
  if (i == st.connections.end())
    return;
  auto slot = std::move(i->second);
  st.connections.erase(i);
  st.routes->remove(id);
  retire(self, id, slot, reason);
}

// -- inbound ---------------------------------------------------------------------------

// r[impl connection.open]
void on_open(session_pointer self, connection_id id, connection_open& open) {
  auto& st = self->state;
  auto reject = [&](vox::metadata md) { send(self, id, connection_reject{std::move(md)}); };
  auto peer_parity = opposite(st.handshake.our_settings.parity);
  auto id_parity = id % 2 == 1 ? parity::odd : parity::even;
  // Behaviours 67–69: reject (no teardown) a wrong parity, a used id, or with no acceptor.
  if (id == 0 || id_parity != peer_parity || st.connections.count(id) > 0 || !st.options.acceptor) {
    reject({});
    return;
  }
  // A peer must not be able to grow the table (a driver actor each) without bound.
  if (st.connections.size() > st.options.max_virtual_connections) {
    st.log("rejected inbound connection " + std::to_string(id) + ": "
           + std::to_string(st.options.max_virtual_connections) + " virtual connections are open");
    reject({});
    return;
  }
  // r[impl connection.open.rejection]
  auto decision = st.options.acceptor(id, open.connection_settings, open.metadata);
  if (auto* no = std::get_if<reject_connection>(&decision)) {
    reject(std::move(no->metadata));
    return;
  }
  // r[impl rpc.virtual-connection.accept]
  auto& yes = std::get<accept_connection>(decision);
  auto& slot = st.connections[id];
  slot.local_settings = yes.settings;
  slot.peer_settings = open.connection_settings;
  activate(self, id, slot, std::move(yes.handler), std::move(yes.splice));
  // The application sees the connection before the peer can use it.
  if (yes.on_open)
    yes.on_open(handle_of(self, id, slot));
  send(self, id, connection_accept{yes.settings, std::move(yes.metadata)});
}

void on_accept(session_pointer self, connection_id id, connection_accept& accept) {
  auto& st = self->state;
  auto i = st.connections.find(id);
  // Behaviours 74, 75, 77: an Accept for an active or unknown id is ignored, and the
  // active connection stays open (the reference's closed-flag side effect is not copied).
  if (i == st.connections.end() || !i->second.pending)
    return;
  auto& slot = i->second;
  slot.peer_settings = accept.connection_settings;
  auto promise = std::move(slot.open_promise);
  activate(self, id, slot, std::move(slot.handler), std::move(slot.splice));
  promise.deliver(handle_of(self, id, slot));
}

void on_reject(session_pointer self, connection_id id, connection_reject& rej) {
  auto& st = self->state;
  auto i = st.connections.find(id);
  if (i == st.connections.end() || !i->second.pending)
    return;
  auto promise = std::move(i->second.open_promise);
  st.connections.erase(i);
  promise.deliver(caf::error{static_cast<uint8_t>(errc::rejected), vox_error_category,
                             caf::make_message(std::string{"connection rejected: "} + to_string(rej.metadata),
                                               std::move(rej.metadata))});
  check_root_teardown(self);
}

void dispatch(session_pointer self, message& msg) {
  auto& st = self->state;
  auto id = msg.connection_id;
  std::visit(
    [&](auto& p) {
      using T = std::decay_t<decltype(p)>;
      if constexpr (std::is_same_v<T, connection_open>) {
        on_open(self, id, p);
      } else if constexpr (std::is_same_v<T, connection_accept>) {
        on_accept(self, id, p);
      } else if constexpr (std::is_same_v<T, connection_reject>) {
        on_reject(self, id, p);
      } else if constexpr (std::is_same_v<T, connection_close>) {
        // r[impl connection.close.semantics]
        if (id == 0)
          st.log("peer closed the root connection"); // behaviour 48: not a protocol error
        close_connection(self, id, make_error(errc::connection_closed, "closed by the peer"));
        check_root_teardown(self);
      } else if constexpr (std::is_same_v<T, request_message> || std::is_same_v<T, channel_message>) {
        auto i = st.connections.find(id);
        // Behaviour 50: traffic for unknown or still-pending connections is dropped.
        if (i != st.connections.end() && !i->second.pending)
          self->send(i->second.driver, std::move(msg));
      } else if constexpr (std::is_same_v<T, ping>) {
        // r[impl session.message.connection-id]
        send(self, id, pong{p.nonce}); // behaviour 57: same id, same nonce
      } else if constexpr (std::is_same_v<T, pong>) {
        if (id == 0 && st.keepalive)
          self->send(st.keepalive, caf::pong_atom::value, p.nonce);
      } else {
        // r[impl session.protocol-error]
        st.log("peer reported a protocol error: " + p.description); // behaviour 59
      }
    },
    msg.payload);
}

void start(session_pointer self, attach_root_msg& attach) {
  auto& st = self->state;
  auto& root = st.connections[0];
  root.local_settings = st.handshake.our_settings;
  root.peer_settings = st.handshake.peer_settings;
  root.driver = std::move(attach.driver);
  st.connection_of_driver[root.driver.id()] = 0;
  bool link_started = attach.routes != nullptr;
  if (link_started)
    st.routes = std::move(attach.routes);
  st.routes->add(0, root.driver);
  root.callers = std::move(attach.callers);
  self->monitor(root.driver);
  if (st.options.keepalive) {
    auto ka = *st.options.keepalive;
    if (ka.ping_interval.count() > 0 && ka.pong_timeout.count() > 0)
      detail::start_keepalive(self);
    else
      st.log("keepalive disabled: ping interval and pong timeout must both be non-zero");
  }
  detail::register_resumable(self);
  // From here on the link delivers decoded Messages into our mailbox; no thread of ours
  // waits for it.
  if (!st.options.io)
    st.options.io = default_io_reactor(self->system());
  if (!link_started)
    st.conduit->current()->start(std::make_shared<session_input>(caf::actor_cast<session_actor>(self), st.routes),
                                 st.options.io);
}

// -- local requests and events ---------------------------------------------------------

void on_link_down(session_pointer self, link_down_msg& m) {
  if (m.epoch != self->state.epoch)
    return; // a link a resume replaced
  if (m.reason && is_decode_error(m.reason)) {
    fail_protocol(self, "undecodable message from peer: " + describe(m.reason));
    return;
  }
  if (detail::can_resume(self->state)) {
    detail::disconnect(self, std::move(m.reason));
    return;
  }
  // Behaviour 26/31: a non-resumable session ends on EOF or a link error (backpressure
  // included: the peer stopped reading).
  end_session(self, std::move(m.reason));
}

caf::typed_response_promise<connection_handle> on_open_request(session_pointer self, open_request& req) {
  auto& st = self->state;
  auto rp = self->make_response_promise<connection_handle>();
  if (st.ended) {
    rp.deliver(make_error(errc::session_shutdown, "session closed"));
    return rp;
  }
  if (st.disconnected) { // behaviour 35
    rp.deliver(make_error(errc::link_closed, "session is disconnected; resume before opening connections"));
    return rp;
  }
  // r[impl rpc.virtual-connection.open]
  auto id = st.next_connection_id;
  st.next_connection_id += 2; // behaviour 78: ids are never reused
  if (!send(self, id, connection_open{req.settings, std::move(req.metadata)})) {
    rp.deliver(make_error(errc::io_error, "failed to send ConnectionOpen"));
    return rp;
  }
  auto& slot = st.connections[id];
  slot.pending = true;
  slot.local_settings = req.settings;
  slot.handler = std::move(req.handler);
  slot.splice = std::move(req.splice);
  slot.open_promise = rp;
  return rp;
}

caf::result<caf::ok_atom> on_close_request(session_pointer self, connection_id id, vox::metadata& md) {
  auto& st = self->state;
  // r[impl connection.close]
  if (id == 0)
    return make_error(errc::invalid_request, "cannot close root connection");
  if (st.disconnected) // behaviour 36
    return make_error(errc::link_closed, "session is disconnected; resume before closing connections");
  if (st.connections.count(id) == 0)
    return make_error(errc::invalid_request, "connection not found");
  close_connection(self, id, make_error(errc::connection_closed, "closed locally"));
  auto sent = send(self, id, connection_close{std::move(md)});
  check_root_teardown(self);
  if (!sent)
    return make_error(errc::io_error, "failed to send ConnectionClose");
  return caf::ok_atom::value;
}

void on_caller_dropped(session_pointer self, connection_id id) {
  auto& st = self->state;
  auto i = st.connections.find(id);
  if (i == st.connections.end() || i->second.spliced)
    return; // a spliced connection lives as long as its splice, whatever its callers do
  // A caller made after the drop keeps the connection. Callers are made on any thread,
  // under the registry's mutex: read the guard under it too.
  if (auto& callers = i->second.callers) {
    std::lock_guard<std::mutex> guard{callers->mtx};
    if (!callers->guard.expired())
      return;
  }
  if (id == 0) {
    st.root_closed = true; // behaviour 87: no ConnectionClose for the root
  } else {
    close_connection(self, id, make_error(errc::connection_closed, "last caller dropped"));
    send(self, id, connection_close{}); // behaviour 88
  }
  check_root_teardown(self);
}

/// A monitored driver ended: its connection goes with it. The keepalive ended: so does
/// the session (it only exits on its own when the session is gone already).
void on_down(session_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (st.keepalive && dm.source == st.keepalive.address()) {
    auto why = dm.reason ? describe(dm.reason) : std::string{"exited"};
    st.log("keepalive monitor died (" + why + "): ending the session");
    end_session(self, make_error(errc::internal, "keepalive monitor died: " + why));
    return;
  }
  std::vector<connection_id> gone;
  if (auto d = st.connection_of_driver.find(dm.source.id()); d != st.connection_of_driver.end()) {
    gone.push_back(d->second);
    st.connection_of_driver.erase(d);
  } else {
    // A splice serves one or two of our connections; a closed one is gone from the table.
    for (auto& [id, slot] : st.connections)
      if (slot.spliced && slot.driver.address() == dm.source)
        gone.push_back(id);
  }
  if (gone.empty())
    return; // its connection was closed already
  for (auto cid : gone) {
    st.connections.erase(cid);
    st.routes->remove(cid);
    if (cid == 0)
      st.root_closed = true; // behaviour 113: a root id is closed internally
    else
      send(self, cid, connection_close{}); // a dead driver takes its connection along
  }
  check_root_teardown(self);
}

session_info info_of(const session_state& st) {
  session_info info;
  info.parity = st.handshake.our_settings.parity;
  info.initiator = st.handshake.role == session_role::initiator;
  for (auto& [id, slot] : st.connections)
    (slot.pending ? info.pending_connections : info.active_connections)++;
  info.root_closed = st.root_closed;
  info.keepalive = st.keepalive.address();
  info.connected = !st.disconnected;
  info.resumes = st.resumes;
  info.resume_key = st.resume_key;
  info.peer_supports_retry = st.handshake.peer_supports_retry;
  if (auto lnk = st.conduit->current())
    info.link = lnk->describe();
  return info;
}


} // namespace

session_actor::behavior_type session_behavior(session_pointer self, std::shared_ptr<bare_conduit> conduit,
                                              handshake_result handshake, session_options options) {
  auto& st = self->state;
  st.conduit = std::move(conduit);
  // r[impl session.parity]
  st.next_connection_id = handshake.our_settings.parity == parity::odd ? 1 : 2;
  st.handshake = std::move(handshake);
  // The peer's schema blob (kilobytes) is the application's to keep, via session_handle;
  // an idle session should not carry it.
  byte_buffer{}.swap(st.handshake.peer_message_payload_schema);
  st.options = std::move(options);
  st.log_to = log_sink_of(st.options);
  if (st.options.resumable)
    st.resume_key = st.handshake.session_resume_key;
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
    [self](attach_root_msg& m) { start(self, m); },
    [self](inbound_msg& m) {
      if (m.epoch != self->state.epoch)
        return;
      dispatch(self, m.msg);
      self->state.routes->handled();
    },
    [self](link_down_msg& m) { on_link_down(self, m); },
    [self](caf::open_atom, open_request& req) { return on_open_request(self, req); },
    [self](caf::close_atom, connection_id id, vox::metadata& md) { return on_close_request(self, id, md); },
    [self](caller_dropped_msg& m) { on_caller_dropped(self, m.id); },
    [self](caf::ping_atom, uint64_t nonce) {
      // A keepalive stopped by a disconnect may still have asked.
      if (self->state.disconnected || self->current_sender() != self->state.keepalive.address())
        return;
      if (!send(self, 0, ping{nonce}))
        end_session(self, make_error(errc::io_error, "failed to send keepalive Ping"));
    },
    [self](keepalive_timeout_msg& m) {
      if (self->current_sender() != self->state.keepalive.address())
        return;
      end_session(self, make_error(errc::timeout, "keepalive: no Pong for Ping " + std::to_string(m.nonce)
                                                    + " within the timeout"));
    },
    [self](protocol_violation_msg& m) { fail_protocol(self, describe(m.reason)); },
    [self](stop_atom) { end_session(self, caf::error{}); },
    [self](splice_msg& m) {
      self->detach(detail::splice_guard_token(m.proxy)); // from here on we end the splice
      auto& st = self->state;
      auto i = st.connections.find(m.id);
      if (st.ended || i == st.connections.end() || i->second.pending) {
        spliced_msg no;
        no.id = m.id;
        no.error = make_error(errc::invalid_request, "no open connection " + std::to_string(m.id) + " to splice");
        self->send(m.proxy, std::move(no));
        return;
      }
      splice_connection(self, m.id, i->second, std::move(m.proxy));
    },
    [self](caf::get_atom) { return info_of(self->state); },
    [self](resume_msg& m) { return detail::resume(self, m); },
    [self](resume_deadline_atom, uint64_t serial) { detail::resume_deadline(self, serial); },
    [self](reconnect_failed_msg& m) { detail::reconnect_failed(self, m.reason); },
  };
}

} // namespace vox
