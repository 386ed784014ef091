#include "actors/driver_actor.hpp"

#include <cstdio>
#include <utility>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/monitor.hpp"
#include "transport/io_reactor.hpp"

namespace vox {

void driver_state::fail_pending(const caf::error& reason) {
  auto calls = std::move(pending);
  pending.clear();
  pending_with_channels.clear();
  resend.clear();
  tags.clear();
  for (auto& [id, rp] : calls)
    rp.deliver(reason);
  auto waiting = std::move(queued);
  queued.clear();
  for (auto& [call, rp] : waiting)
    rp.deliver(reason);
  // Channels of calls still queued go with the rest.
  if (cfg.channels)
    cfg.channels->closed.store(true, std::memory_order_release);
  if (channels)
    channels->close_all(reason);
}

namespace detail {

immediate_reply*& current_immediate_reply() noexcept {
  thread_local immediate_reply* slot = nullptr;
  return slot;
}

} // namespace detail

driver_state::~driver_state() {
  fail_pending(make_error(errc::connection_closed, "connection driver exited"));
}

namespace {

void send_queued(driver_pointer self);
void on_reply(driver_pointer self, reply_msg& r);

/// Opens this thread's slot for the answer of the call whose handler runs in its scope.
class immediate_reply_scope {
public:
  explicit immediate_reply_scope(detail::immediate_reply& slot) noexcept
    : previous_(std::exchange(detail::current_immediate_reply(), &slot)) {}
  ~immediate_reply_scope() { detail::current_immediate_reply() = previous_; }
  immediate_reply_scope(const immediate_reply_scope&) = delete;
  immediate_reply_scope& operator=(const immediate_reply_scope&) = delete;

private:
  detail::immediate_reply* previous_;
};

void send_response(driver_pointer self, request_id id, vox::metadata md, payload ret,
                   const schema::schema_payload* schemas = nullptr) {
  auto& st = self->state;
  // r[impl rpc.response.one-per-request]
  auto i = st.inflight.find(id);
  if (i == st.inflight.end())
    return;
  auto method = i->second.method_id;
  // r[impl retry.seal.terminal-replay]
  // The owner of an operation answered: later calls with its id get the same answer,
  // and those waiting for it get it now. A call with channels is sealed only once its
  // answer is on the wire: one that could not go out may be the fruit of channels the
  // broken link took along, and a resume releases it instead (see on_resumed).
  auto seal = [&] {
    if (st.operations)
      for (auto w : st.operations->seal(id, {method, md, ret, schemas}))
        send_response(self, w, md, ret, schemas);
  };
  if (!i->second.has_channels)
    seal();
  bool first = schemas != nullptr && st.response_schemas_sent.count(method) == 0;
  std::vector<uint8_t> cbor;
  // r[impl schema.exchange]
  if (first)
    cbor = st.schemas_out.prepare(*schemas);
  message msg{st.cfg.id, request_message{id, request_response{std::move(md), std::move(ret), std::move(cbor)}}};
  if (!st.cfg.conduit->send(msg, st.generation, self->context())) {
    // The link broke or a resume is under way: the Response goes out after the resume
    // (with schemas prepared again for the new link), or never if the session ends.
    auto& resp = std::get<request_response>(std::get<request_message>(msg.payload).body);
    st.held_replies.push_back(reply_msg{id, std::move(resp.metadata), std::move(resp.ret), schemas});
    st.link_failed = true;
    return;
  }
  if (first)
    st.response_schemas_sent.insert(method);
  auto had_channels = i->second.has_channels;
  st.inflight.erase(i);
  if (had_channels) {
    auto& resp = std::get<request_response>(std::get<request_message>(msg.payload).body);
    md = std::move(resp.metadata);
    ret = std::move(resp.ret);
    seal();
  }
}

/// Asks the session to answer the peer's violation with a ProtocolError and end.
void report_violation(driver_pointer self, const std::string& what) {
  self->send(self->state.cfg.session,
             protocol_violation_msg{make_error(errc::protocol_violation,
                                               "connection " + std::to_string(self->state.cfg.id) + ": " + what)});
}

/// Records schemas the peer attached; a malformed or repeated one ends the session.
bool record_schemas(driver_pointer self, const std::vector<uint8_t>& cbor) {
  if (cbor.empty())
    return true;
  auto root = self->state.schemas_in.record(cbor);
  if (root)
    return true;
  report_violation(self, "bad schemas: " + describe(root.error()));
  return false;
}

void handle_channel(driver_pointer self, channel_message& cm) {
  if (!self->state.channels->on_message(cm))
    report_violation(self, "channel " + std::to_string(cm.id) + " sent an item without credit");
}

std::string method_label(method_id_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(id));
  return buf;
}

void log(driver_pointer self, const std::string& line) {
  if (self->state.cfg.log && *self->state.cfg.log)
    (*self->state.cfg.log)(line);
}

/// A Call of the peer's that may carry an operation id (we advertised supports_retry).
/// True: run the handler; false: it is answered (or will be) without running it.
bool admit_operation(driver_pointer self, request_id id, const request_call& call) {
  auto& st = self->state;
  auto op = operation_id_of(call.metadata);
  if (!op)
    return true;
  using verdict = detail::operation_store::verdict;
  switch (st.operations->admit(*op, id, call.method_id)) {
    case verdict::start:
      return true;
    case verdict::duplicate:
    case verdict::attached: // r[impl retry.duplicate.live.attach]: answered with the owner
      return false;
    case verdict::replay: { // r[impl retry.duplicate.sealed]
      auto answer = *st.operations->sealed(*op);
      send_response(self, id, std::move(answer.metadata), std::move(answer.ret), answer.schemas);
      return false;
    }
    case verdict::indeterminate: // r[impl retry.gc.fail-closed]
      send_response(self, id, {}, indeterminate_response());
      return false;
    case verdict::conflict:
      send_response(self, id, {}, invalid_payload_response("operation ID conflict"));
      return false;
  }
  return false;
}

void handle_request(driver_pointer self, request_message& rm) {
  auto& st = self->state;
  if (auto* call = std::get_if<request_call>(&rm.body)) {
    if (!record_schemas(self, call->schemas))
      return;
    if (st.inflight.count(rm.id) > 0)
      return; // a duplicate of a call still being handled; the first one answers
    // r[impl rpc.flow-control.max-concurrent-requests]
    // Calls read before our link failed are not the peer's excess: their answers are
    // what is stuck (the count is bounded by what was read before the failure).
    auto limit = st.cfg.local_settings.max_concurrent_requests;
    if (limit > 0 && st.inflight.size() >= limit && !st.link_failed) {
      report_violation(self, "more than " + std::to_string(limit) + " concurrent requests");
      return;
    }
    auto control = std::make_shared<detail::call_control>();
    st.inflight.emplace(rm.id, driver_state::inflight_call{call->method_id, control, false, std::nullopt, channel_retry_mode::none});
    if (st.operations && !admit_operation(self, rm.id, *call))
      return;
    if (!st.cfg.handler) {
      send_response(self, rm.id, {}, unknown_method_response());
      return;
    }
    auto method = call->method_id;
    incoming_call in{st.cfg.id, rm.id, method, std::move(call->metadata), std::move(call->args),
                     std::move(call->schemas), &self->system(), st.cfg.log, nullptr};
    // Tx/Rx arguments the handler decodes become channels of this connection at once, so
    // that items right behind the Call find them.
    detail::channel_binder binder{st.cfg.channels, caf::actor_cast<driver_actor>(self), &*st.channels};
    detail::binder_scope scope{binder};
    auto& entry = st.inflight[rm.id];
    entry.operation = operation_id_of(in.metadata);
    entry.retry_mode = channel_retry_mode_of(in.metadata);
    detail::immediate_reply answer{control.get(), std::nullopt};
    {
      immediate_reply_scope answering{answer};
      // r[impl rpc.handler]
      try {
        st.cfg.handler(std::move(in), reply_sink{caf::actor_cast<driver_actor>(self), rm.id, control});
      } catch (const std::exception& e) {
        // Unless it answered first, the handler's sink copies are gone, so the caller
        // gets Cancelled.
        log(self, "handler of method " + method_label(method) + " threw: " + e.what());
      } catch (...) {
        log(self, "handler of method " + method_label(method) + " threw a non-standard exception");
      }
    }
    if (auto i = st.inflight.find(rm.id); i != st.inflight.end() && i->second.control == control)
      i->second.has_channels = !binder.declared.empty();
    if (answer.reply)
      on_reply(self, *answer.reply);
  } else if (auto* resp = std::get_if<request_response>(&rm.body)) {
    if (!record_schemas(self, resp->schemas))
      return;
    auto i = st.pending.find(rm.id);
    if (i == st.pending.end())
      return; // unsolicited or late (after cancel): dropped, as the reference does
    {
      // The caller's continuation may run right here (io_inline::reply_handlers).
      io_loop::reply_scope reply;
      i->second.deliver(
        call_response{std::move(resp->metadata), std::move(resp->ret), std::move(resp->schemas)});
    }
    st.pending.erase(i);
    st.pending_with_channels.erase(rm.id);
    st.resend.erase(rm.id);
    std::erase_if(st.tags, [&](const auto& kv) { return kv.second == rm.id; });
    send_queued(self);
  } else {
    // r[impl rpc.cancel]
    auto i = st.inflight.find(rm.id);
    if (i == st.inflight.end())
      return; // already answered, or never called
    auto schemas = i->second.control->response_schemas.load();
    if (st.operations && st.operations->detach(rm.id)) {
      // A call waiting for the run of an earlier call with its operation id: only the
      // waiting ends; the run goes on for its owner. (The reference leaves the waiter of a
      // persistent operation without any response, pitfall 15; every request gets one here.)
      send_response(self, rm.id, {}, cancelled_response(), schemas);
      return;
    }
    // r[impl retry.cancel.explicit.persist]
    // A persistent method's run is not released: its answer, when it comes, is this
    // request's one response (and the operation's sealed outcome).
    if (i->second.control->persistent.load())
      return;
    i->second.control->cancelled.store(true);
    if (st.operations) // r[impl retry.cancel.explicit.volatile]: released, and whoever waited for it too
      for (auto w : st.operations->forget(rm.id))
        send_response(self, w, {}, cancelled_response(), schemas);
    send_response(self, rm.id, {}, cancelled_response(), schemas);
  }
}

bool at_peer_limit(const driver_state& st) {
  auto limit = st.cfg.peer_settings.max_concurrent_requests;
  return limit > 0 && st.pending.size() >= limit;
}

/// Soft backpressure: true while the link has more queued for the peer than its
/// high-water mark, so new calls and channel credit wait; the link then tells us, once,
/// when it drained. The session and replies to the peer's calls are not held: they are
/// bounded by the peer's own request limit.
bool hold_for_link(driver_pointer self) {
  auto& st = self->state;
  auto& conduit = *st.cfg.conduit;
  if (st.link_failed || conduit.generation() != st.generation)
    return true; // the link broke or a resume is under way: our resumed_msg releases what waits
  // A missing link (the session is disconnected) counts as congested: what waits goes
  // out once a resume attaches a new one.
  if (!conduit.congested())
    return false;
  if (!st.awaiting_drain) {
    st.awaiting_drain = true;
    // A weak address: the link must not keep a finished driver alive.
    conduit.when_drained([addr = self->address()] {
      if (auto a = caf::actor_cast<caf::actor>(addr))
        caf::anon_send(a, link_drained_atom::value);
    });
  }
  return true;
}

/// Answers credit requests held back by a congested link, once it is not.
void pump_credit(driver_pointer self) {
  auto& ch = *self->state.channels;
  while (ch.credit_held() && !hold_for_link(self))
    ch.serve_held();
}

void start_call(driver_pointer self, outgoing_call call, caf::typed_response_promise<call_response> rp) {
  auto& st = self->state;
  auto id = st.next_request_id;
  st.next_request_id += 2;
  st.pending.emplace(id, rp);
  if (call.cancel_tag != 0)
    st.tags.emplace(call.cancel_tag, id);
  if (st.cfg.peer_supports_retry) {
    // The operation id lets the peer recognise this call when we send it again after a
    // resume; what we sent is kept until the Response comes.
    if (!operation_id_of(call.metadata))
      call.metadata.push_back(metadata_entry{operation_id_key, st.next_operation_id++, metadata_flags::none});
    st.resend.emplace(id, driver_state::sent_call{call.method_id, call.metadata, call.args, call.args_schemas,
                                                  call.channels, call.channel_offsets});
  }
  std::vector<uint8_t> cbor;
  // r[impl schema.exchange]
  bool first = call.args_schemas != nullptr && st.args_schemas_sent.insert(call.method_id).second;
  if (first)
    cbor = st.schemas_out.prepare(*call.args_schemas);
  message msg{st.cfg.id, request_message{id, request_call{call.method_id, std::move(call.metadata),
                                                          std::move(call.args), std::move(cbor)}}};
  if (!st.cfg.conduit->send(msg, st.generation, self->context())) {
    // The link broke under us: the call waits, first in line, for a resume (its schemas
    // prepared again then), or fails with the rest when the session ends.
    st.pending.erase(id);
    st.resend.erase(id);
    st.tags.erase(call.cancel_tag);
    st.next_request_id -= 2;
    if (first)
      st.args_schemas_sent.erase(call.method_id);
    st.link_failed = true;
    auto& c = std::get<request_call>(std::get<request_message>(msg.payload).body);
    call.metadata = std::move(c.metadata);
    call.args = std::move(c.args);
    st.queued.emplace_front(std::move(call), std::move(rp));
    return;
  }
  if (!call.channels.empty())
    st.pending_with_channels.insert(id);
  for (auto& ch : call.channels)
    st.channels->activate(ch.id);
}

/// Starts queued calls while the peer's limit and the link allow.
void send_queued(driver_pointer self) {
  auto& st = self->state;
  while (!st.queued.empty() && !at_peer_limit(st) && !hold_for_link(self)) {
    auto [call, rp] = std::move(st.queued.front());
    st.queued.pop_front();
    start_call(self, std::move(call), std::move(rp));
  }
}

caf::error channels_lost() {
  return make_error(errc::session_lost, "the session resumed on a new link, which ended the call's channels");
}

/// A call whose channel ends were bound before a resume: they cannot reach the peer.
void fail_stale_call(driver_pointer self, outgoing_call& call, caf::typed_response_promise<call_response>& rp) {
  auto err = channels_lost();
  for (auto& ch : call.channels)
    self->state.channels->fail(ch.id, err);
  rp.deliver(err);
}

/// Sends a pending call again, as it was (request id, operation id, arguments), with its
/// schemas when it is its method's first call on the new link.
bool send_again(driver_pointer self, request_id id, const driver_state::sent_call& sc) {
  auto& st = self->state;
  std::vector<uint8_t> cbor;
  bool first = sc.args_schemas != nullptr && st.args_schemas_sent.insert(sc.method).second;
  if (first)
    cbor = st.schemas_out.prepare(*sc.args_schemas);
  auto sent = st.cfg.conduit->send(
    message{st.cfg.id, request_message{id, request_call{sc.method, sc.metadata, sc.args, std::move(cbor)}}},
    st.generation, self->context());
  if (!sent && first)
    st.args_schemas_sent.erase(sc.method);
  return static_cast<bool>(sent);
}

/// A pending call with channels that may run again after a resume: idempotent (the caller
/// said so in its metadata) and we only receive on its channels.
bool rerunnable(const driver_state& st, const driver_state::sent_call& sc) {
  if (channel_retry_mode_of(sc.metadata) != channel_retry_mode::idem)
    return false;
  return std::all_of(sc.channels.begin(), sc.channels.end(),
                     [&](const channel_decl& ch) { return st.channels->receives(ch.id); });
}

/// Gives the channels of call `sc` fresh ids for its new run (testbed-service.md §4):
/// the peer may still hold the old ones as stale. Its ends keep the ids they were bound
/// with (driver_channels maps them). False if its arguments cannot be rewritten.
bool rebind_channels(driver_state& st, driver_state::sent_call& sc) {
  std::vector<channel_id> from;
  std::vector<channel_id> to;
  for (const auto& ch : sc.channels) {
    from.push_back(ch.id);
    to.push_back(st.cfg.channels->allocate());
  }
  auto args = detail::rewrite_channel_ids(sc.args, sc.channel_offsets, from, to);
  if (!args)
    return false;
  sc.args = std::move(*args);
  for (size_t i = 0; i < to.size(); ++i) {
    st.channels->rebind(from[i], to[i]);
    sc.channels[i].id = to[i];
  }
  return true;
}

/// A handler let go of call `r.id` without answering (every copy of its reply_sink is
/// gone). The answer is Cancelled, but Indeterminate for a persistent method, which may
/// have done its work (r[retry.cancel.implicit.persist]), and for any call with an
/// operation id whose method is not idempotent. Such an operation is released, never
/// sealed (r[retry.cancel.implicit.volatile]): a repeat of an idempotent method runs
/// again (r[retry.duplicate.released.idem]), one of any other gets Indeterminate
/// (r[retry.duplicate.released.non-idem]); calls waiting for the run get this call's
/// answer. While the link is down the caller itself is not answered: it sends the call
/// again after the resume, and the store answers that.
void answer_released(driver_pointer self, driver_state::inflight_call& call, reply_msg& r) {
  auto& st = self->state;
  bool idempotent = call.control->idempotent.load();
  if (call.control->persistent.load() || (call.operation && !idempotent))
    r.ret = indeterminate_response();
  if (!call.operation || !st.operations) {
    send_response(self, r.id, std::move(r.metadata), std::move(r.ret), r.response_schemas);
    return;
  }
  auto waiters = st.operations->release(r.id, idempotent);
  auto& conduit = *st.cfg.conduit;
  if (st.link_failed || !conduit.attached() || conduit.generation() != st.generation) {
    st.inflight.erase(r.id);
    for (auto w : waiters)
      send_response(self, w, {}, indeterminate_response());
    return;
  }
  for (auto w : waiters)
    send_response(self, w, r.metadata, r.ret, r.response_schemas);
  send_response(self, r.id, std::move(r.metadata), std::move(r.ret), r.response_schemas);
}

/// A handler's answer, from its sink.
void on_reply(driver_pointer self, reply_msg& r) {
  auto& st = self->state;
  auto i = st.inflight.find(r.id);
  if (i == st.inflight.end() || (r.attempt && r.attempt != i->second.control))
    return; // answered already, or the answer of a run a resume ended
  if (r.released)
    answer_released(self, i->second, r);
  else
    send_response(self, r.id, std::move(r.metadata), std::move(r.ret), r.response_schemas);
}

/// The peer's calls whose handlers bound channels cannot go on after a resume (their
/// channels end). Their runs are abandoned: the handler sees itself cancelled, and its
/// answer, if it still comes, is dropped. A caller that sent an operation id knows what
/// to do (send it again if idempotent, else conclude Indeterminate), and the store
/// answers a repeat accordingly; any other caller gets Indeterminate now.
void release_inflight_channel_calls(driver_pointer self) {
  auto& st = self->state;
  std::vector<request_id> released;
  for (auto& [id, call] : st.inflight) {
    if (!call.has_channels)
      continue;
    call.control->cancelled.store(true);
    released.push_back(id);
  }
  // Answers they gave after their link broke are not sent (nor were they sealed).
  std::erase_if(st.held_replies, [&](const reply_msg& r) {
    return std::find(released.begin(), released.end(), r.id) != released.end();
  });
  for (auto id : released) {
    auto call = st.inflight[id];
    std::vector<request_id> waiters;
    if (call.operation && st.operations) {
      waiters = st.operations->release(id, call.retry_mode == channel_retry_mode::idem);
      st.inflight.erase(id);
    } else {
      // r[impl retry.outcome.indeterminate.recovery]
      waiters.push_back(id);
    }
    for (auto w : waiters)
      send_response(self, w, {}, indeterminate_response());
  }
}

/// The session resumed on a new link (behaviour 46). The peer forgot the schemas of
/// every connection and its channels, so do we (pitfall 3: the receive side of every
/// connection too). Pending calls with channels end (Indeterminate with retry, unless
/// idempotent: those run again), so do the peer's; the other pending calls wait for
/// their Response, and are sent again when the peer supports retry; what was held for
/// the link goes out now.
void on_resumed(driver_pointer self, const resumed_msg& m) {
  auto& st = self->state;
  auto generation = m.generation;
  st.generation = generation;
  st.link_failed = false;
  st.awaiting_drain = false;
  st.schemas_out.reset();
  st.schemas_in.reset();
  st.args_schemas_sent.clear();
  st.response_schemas_sent.clear();
  auto lost = channels_lost();
  std::vector<channel_id> keep;
  std::erase_if(st.pending_with_channels, [&](request_id id) {
    auto p = st.pending.find(id);
    if (p == st.pending.end())
      return true;
    auto r = st.resend.find(id);
    if (r != st.resend.end() && rerunnable(st, r->second) && rebind_channels(st, r->second)) {
      // r[impl retry.channel.volatile.rebinding]
      // Idempotent, and we only receive on its channels: it goes out again (same request
      // and operation id, fresh channel ids) and runs again; what the new run sends
      // arrives on the same receiving ends.
      for (auto& ch : r->second.channels)
        keep.push_back(ch.id);
      return false;
    }
    // r[impl retry.channel.recovery.non-idem]
    // With an operation id the call is ambiguous and its channels are gone: Indeterminate.
    if (r != st.resend.end()) {
      st.resend.erase(r);
      p->second.deliver(call_response{{}, indeterminate_response(), {}});
    } else {
      p->second.deliver(lost);
    }
    st.pending.erase(p);
    std::erase_if(st.tags, [&](const auto& kv) { return kv.second == id; });
    return true;
  });
  release_inflight_channel_calls(self);
  std::erase_if(st.queued, [&](auto& q) {
    if (q.first.channels.empty() || q.first.generation >= generation)
      return false;
    fail_stale_call(self, q.first, q.second);
    return true;
  });
  st.channels->resumed(generation, lost, keep);
  auto held = std::move(st.held_replies);
  st.held_replies.clear();
  for (auto& r : held)
    send_response(self, r.id, std::move(r.metadata), std::move(r.ret), r.response_schemas);
  // r[impl retry.reconnect.session-resume.evaluate]
  // Calls whose Call or Response the old link may have lost go out again; the peer's
  // operation store runs each at most once and answers the rest from what it kept.
  st.cfg.peer_supports_retry = m.peer_supports_retry;
  if (!st.cfg.peer_supports_retry)
    st.resend.clear();
  for (auto& [id, sc] : st.resend) {
    if (!send_again(self, id, sc)) {
      st.link_failed = true; // the new link broke too: the next resume sends them
      break;
    }
  }
  send_queued(self);
  pump_credit(self);
}

/// A channel request that waits gets its deadline as a message to ourselves.
void arm(driver_pointer self, const channel_request& req, uint64_t serial) {
  if (serial != 0 && req.timeout.count() > 0)
    self->delayed_send(self, req.timeout, channel_timeout_atom::value, req.channel.id, serial);
}

} // namespace

driver_actor::behavior_type driver_behavior(driver_pointer self, driver_config cfg) {
  // r[impl rpc.request.id-allocation]
  self->state.next_request_id = cfg.local_settings.parity == parity::odd ? 1 : 2;
  self->state.cfg = std::move(cfg);
  self->state.generation = self->state.cfg.conduit->generation();
  if (self->state.cfg.operations)
    self->state.operations.emplace(*self->state.cfg.operations);
  self->state.channels.emplace(self, self->state.cfg.id, self->state.cfg.local_settings.parity, self->state.cfg.conduit);
  detail::monitor_while_alive(self, self->state.cfg.session);
  self->set_down_handler([self](caf::down_msg&) {
    self->state.fail_pending(make_error(errc::session_shutdown, "the session ended"));
    self->quit();
  });
  return {
    [self](vox::message& msg) {
      if (auto* rm = std::get_if<request_message>(&msg.payload))
        handle_request(self, *rm);
      else if (auto* cm = std::get_if<channel_message>(&msg.payload))
        handle_channel(self, *cm);
      pump_credit(self);
    },
    [self](call_atom, outgoing_call& call) -> caf::typed_response_promise<call_response> {
      auto rp = self->make_response_promise<call_response>();
      auto& st = self->state;
      if (!call.channels.empty() && call.generation < st.generation) {
        fail_stale_call(self, call, rp);
        return rp;
      }
      for (auto& ch : call.channels)
        st.channels->declare(ch, false, call.generation);
      // r[impl rpc.flow-control.max-concurrent-requests]
      if (at_peer_limit(st) || !st.queued.empty() || hold_for_link(self))
        st.queued.emplace_back(std::move(call), rp); // waits its turn, in order
      else
        start_call(self, std::move(call), rp);
      pump_credit(self);
      return rp;
    },
    [self](cancel_atom, uint64_t tag) {
      auto& st = self->state;
      auto t = st.tags.find(tag);
      if (t == st.tags.end()) {
        // Not sent yet: drop it from the queue.
        for (auto i = st.queued.begin(); i != st.queued.end(); ++i) {
          if (i->first.cancel_tag == tag) {
            auto cancelled = make_error(errc::cancelled, "call cancelled");
            // Its channels never reach the peer: their ends fail instead of waiting.
            for (auto& ch : i->first.channels)
              st.channels->fail(ch.id, cancelled);
            i->second.deliver(cancelled);
            st.queued.erase(i);
            return;
          }
        }
        return;
      }
      auto id = t->second;
      st.tags.erase(t);
      auto p = st.pending.find(id);
      if (p == st.pending.end())
        return;
      p->second.deliver(make_error(errc::cancelled, "call cancelled"));
      st.pending.erase(p); // a Response that still arrives is dropped
      st.pending_with_channels.erase(id);
      st.resend.erase(id);
      (void) st.cfg.conduit->send(message{st.cfg.id, request_message{id, request_cancel{}}}, st.generation,
                                  self->context());
      send_queued(self);
    },
    [self](reply_atom, reply_msg& r) { on_reply(self, r); },
    [self](connection_closed_msg& closed) {
      self->state.fail_pending(closed.reason);
      self->quit();
    },
    [self](channel_credit_atom, channel_request& req) {
      auto rp = self->make_response_promise<uint32_t>();
      if (self->state.channels->stale_end(req.channel.id, req.generation)) {
        rp.deliver(channels_lost());
        return rp;
      }
      arm(self, req, self->state.channels->want_credit(req, rp));
      pump_credit(self);
      return rp;
    },
    [self](channel_recv_atom, channel_request& req) {
      auto rp = self->make_response_promise<channel_batch>();
      if (self->state.channels->stale_end(req.channel.id, req.generation)) {
        rp.deliver(channels_lost());
        return rp;
      }
      arm(self, req, self->state.channels->want_items(req, rp));
      return rp;
    },
    [self](channel_control_msg& msg) {
      if (!self->state.channels->stale_end(msg.channel.id, msg.generation))
        self->state.channels->control(msg);
    },
    [self](channel_timeout_atom, channel_id id, uint64_t serial) { self->state.channels->expire(id, serial); },
    [self](resumed_msg& m) { on_resumed(self, m); },
    [self](link_drained_atom) {
      self->state.awaiting_drain = false;
      send_queued(self);
      pump_credit(self);
    },
  };
}

} // namespace vox
