#include "actors/proxy.hpp"

#include <array>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/session_actor.hpp"
#include "protocol/schema_tracker.hpp"
#include "transport/bare_conduit.hpp"

namespace vox {

namespace {

/// Forwarding keeps every entry but those flagged NO_PROPAGATE (message.hpp's
/// `propagated`, in place: the rest is moved, not copied).
// r[impl rpc.metadata.flags.no-propagate]
void strip(vox::metadata& md) {
  std::erase_if(md, [](const metadata_entry& e) { return (e.flags & metadata_flags::no_propagate) != 0; });
}

/// The schemas a forwarded Call (`is_response` false) or Response of `method` may need.
struct binding {
  bool is_response = false;
  method_id_t method = 0;
};

/// One of the two connections a splice serves, and what was exchanged on it.
struct splice_side {
  bool attached = false;
  caf::actor_addr session;
  session_actor session_handle;
  connection_id id = 0;
  std::shared_ptr<bare_conduit> conduit;
  connection_settings local_settings; ///< what we announced: bounds the peer's calls
  connection_settings peer_settings;  ///< what the peer announced: bounds our calls
  uint64_t generation = 0;
  bool resumable = false; ///< see spliced_msg::resumable
  /// Schemas the peer sent here, and the roots it bound to its methods' args / results.
  schema::recv_tracker schemas_in;
  std::unordered_map<method_id_t, schema::type_ref> args_roots;
  std::unordered_map<method_id_t, schema::type_ref> response_roots;
  /// Schemas we sent here; (is_response, method) bindings already attached here.
  schema::send_tracker schemas_out;
  std::set<std::pair<bool, method_id_t>> bindings_sent;
  /// Calls this side's peer made that are forwarded (or waiting to be) and not yet
  /// answered: request id → method.
  std::unordered_map<request_id, method_id_t> calls;
  /// Calls in flight when a link under the splice broke (see `on_resumed`): the caller
  /// sends one again after its own resume, and the callee may still answer the old one.
  std::unordered_map<request_id, method_id_t> stale;
  /// Calls of the other side's peer waiting for this side's peer to allow more.
  std::deque<message> held;
  /// Forwarded Messages not written yet: they go out together once the mailbox is empty
  /// (one write for a burst instead of one per Message), or every `max_batch`. Their
  /// schemas are attached when they are written, so that Messages kept while this side
  /// is disconnected carry what its peer needs after the resume.
  std::vector<message> out;
  std::vector<std::optional<binding>> out_bindings; ///< parallel to `out`
  /// A write failed: the link is gone. What is forwarded meanwhile waits in `out` for
  /// the session to resume (or to end, which ends the splice).
  bool down = false;
  /// We cut this side's link ourselves, to pass on a break of the other side's link:
  /// the resume that follows is not a new break.
  bool cut_by_us = false;
};

constexpr size_t max_batch = 64;

struct splice_state {
  splice_state() = default;
  std::array<splice_side, 2> sides;
  /// Traffic of the first side that arrived before the second was attached.
  std::deque<message> waiting;
  log_sink log;
  static inline const char* name = "vox.splice";
};

using splice_pointer = proxy_actor::stateful_pointer<splice_state>;

splice_side& other(splice_pointer self, splice_side& s) {
  return &s == &self->state.sides[0] ? self->state.sides[1] : self->state.sides[0];
}

/// Attaches, to a Call or Response going out on `to`, the schemas of (is_response,
/// method) the first time that binding crosses `to`, taken from what `from` received.
// r[impl schema.exchange]
void attach_schemas(splice_side& from, splice_side& to, bool is_response, method_id_t method,
                    std::vector<uint8_t>& schemas) {
  schemas.clear();
  if (to.bindings_sent.count({is_response, method}) > 0)
    return;
  auto& roots = is_response ? from.response_roots : from.args_roots;
  auto r = roots.find(method);
  if (r == roots.end())
    return; // the peer never bound it (nothing to forward); try again on the next one
  schemas = to.schemas_out.prepare_forwarded(r->second, from.schemas_in);
  to.bindings_sent.insert({is_response, method});
}

/// Writes what waits for `s` in one go. A refused write (the link is gone) keeps it for
/// after the resume; false only when more waits than the splice may hold.
bool write_out(splice_pointer self, splice_side& s) {
  if (s.out.empty() || s.down)
    return s.out.size() <= connection_splice::max_waiting;
  auto& from = other(self, s);
  for (size_t i = 0; i < s.out.size(); ++i) {
    auto& b = s.out_bindings[i];
    if (!b)
      continue;
    auto& body = std::get<request_message>(s.out[i].payload).body;
    auto& schemas = b->is_response ? std::get<request_response>(body).schemas : std::get<request_call>(body).schemas;
    attach_schemas(from, s, b->is_response, b->method, schemas);
  }
  if (s.conduit->send_many(s.out, s.generation, self->context())) {
    s.out.clear();
    s.out_bindings.clear();
    return true;
  }
  s.down = true;
  return s.out.size() <= connection_splice::max_waiting;
}

/// Ends the splice; its sessions close what remains. A close or a stop is the normal
/// end and is not logged; anything else is, with the reason.
void end(splice_pointer self, const std::string& why, bool normal = false) {
  // What was forwarded before the end still goes out (a disconnected side loses it).
  for (auto& s : self->state.sides)
    (void) write_out(self, s);
  if (!normal && self->state.log && *self->state.log)
    (*self->state.log)("splice ended: " + why);
  self->quit(normal ? caf::error{} : make_error(errc::connection_closed, why));
}

std::vector<splice_side*> sides_of_sender(splice_pointer self) {
  auto sender = caf::actor_cast<caf::actor_addr>(self->current_sender());
  std::vector<splice_side*> out;
  for (auto& s : self->state.sides)
    if (s.attached && s.session == sender)
      out.push_back(&s);
  return out;
}

splice_side* side_of(splice_pointer self, connection_id id) {
  for (auto* s : sides_of_sender(self))
    if (s->id == id)
      return s;
  return nullptr;
}

bool both_attached(splice_pointer self) { return self->state.sides[0].attached && self->state.sides[1].attached; }

/// Writes what waits for `to`; false (the splice ended) if too much waits for a side
/// whose link is gone.
bool flush(splice_pointer self, splice_side& to) {
  if (write_out(self, to))
    return true;
  end(self, "more than " + std::to_string(connection_splice::max_waiting) + " messages waited for connection "
              + std::to_string(to.id) + " to resume on a new link");
  return false;
}

/// After each message: once nothing more waits in the mailbox, the burst goes out. A
/// message that arrives meanwhile runs this again, so nothing is left behind.
void flush_if_idle(splice_pointer self) {
  if (!self->mailbox().empty() || self->getf(caf::abstract_actor::is_terminated_flag))
    return;
  for (auto& s : self->state.sides)
    if (!flush(self, s))
      return;
}

/// Sends `msg` on `to` as a Message of its connection (batched, see splice_side::out);
/// a Call or Response gets the schemas of `b` when it is written.
bool forward(splice_pointer self, splice_side& to, message msg, std::optional<binding> b = std::nullopt) {
  msg.connection_id = to.id;
  to.out.push_back(std::move(msg));
  to.out_bindings.push_back(b);
  return (!to.down && to.out.size() < max_batch) || flush(self, to);
}

/// The peer of `s` broke a rule: its session answers with a ProtocolError and ends.
void violation(splice_pointer self, splice_side& s, const std::string& what) {
  self->send(s.session_handle, protocol_violation_msg{make_error(
                                 errc::protocol_violation, "connection " + std::to_string(s.id) + ": " + what)});
  end(self, "the peer of connection " + std::to_string(s.id) + " " + what);
}

/// Records the schemas a Call or Response carried; false after a violation.
bool record(splice_pointer self, splice_side& s, const std::vector<uint8_t>& cbor,
            std::unordered_map<method_id_t, schema::type_ref>& roots, std::optional<method_id_t> method) {
  if (cbor.empty())
    return true;
  auto root = s.schemas_in.record(cbor);
  if (!root) {
    violation(self, s, "sent bad schemas: " + describe(root.error()));
    return false;
  }
  if (method)
    roots[*method] = std::move(*root);
  return true;
}

/// Sends held Calls on `to` while its peer allows more.
void release_held(splice_pointer self, splice_side& to) {
  auto& from = other(self, to);
  auto limit = to.peer_settings.max_concurrent_requests;
  while (!to.held.empty() && (limit == 0 || from.calls.size() - to.held.size() < limit)) {
    auto msg = std::move(to.held.front());
    to.held.pop_front();
    auto method = std::get<request_call>(std::get<request_message>(msg.payload).body).method_id;
    if (!forward(self, to, std::move(msg), binding{false, method}))
      return;
  }
}

void on_call(splice_pointer self, splice_side& from, splice_side& to, message& msg) {
  auto& rm = std::get<request_message>(msg.payload);
  auto& call = std::get<request_call>(rm.body);
  if (!record(self, from, call.schemas, from.args_roots, call.method_id))
    return;
  if (from.calls.count(rm.id) > 0)
    return; // a repeat of a call in flight: the first one answers (as a driver does)
  // r[impl rpc.flow-control.max-concurrent-requests]
  auto ours = from.local_settings.max_concurrent_requests;
  if (ours > 0 && from.calls.size() >= ours) {
    violation(self, from, "made more than " + std::to_string(ours) + " concurrent requests");
    return;
  }
  from.stale.erase(rm.id); // sent again after a resume: this one is answered now
  from.calls.emplace(rm.id, call.method_id);
  strip(call.metadata);
  to.held.push_back(std::move(msg));
  release_held(self, to);
}

void on_response(splice_pointer self, splice_side& from, splice_side& to, message& msg) {
  auto& rm = std::get<request_message>(msg.payload);
  auto& resp = std::get<request_response>(rm.body);
  std::optional<method_id_t> method;
  bool live = false;
  if (auto c = to.calls.find(rm.id); c != to.calls.end()) {
    method = c->second;
    live = true;
    to.calls.erase(c);
  } else if (auto st = to.stale.find(rm.id); st != to.stale.end()) {
    // Answers a call from before a resume: its caller may still wait for it (one without
    // channels, which it keeps); a second answer it drops, as a driver does.
    method = st->second;
    to.stale.erase(st);
  }
  if (!record(self, from, resp.schemas, from.response_roots, method))
    return;
  if (!method)
    return; // unsolicited, or a second answer: dropped, as a driver does
  strip(resp.metadata);
  if (forward(self, to, std::move(msg), binding{true, *method}) && live)
    release_held(self, from);
}

void on_cancel(splice_pointer self, splice_side& from, splice_side& to, message& msg) {
  auto& rm = std::get<request_message>(msg.payload);
  auto held = std::find_if(to.held.begin(), to.held.end(), [&](const message& m) {
    return std::get<request_message>(m.payload).id == rm.id;
  });
  if (held != to.held.end()) {
    // Never sent on: we answer it ourselves, as the callee would.
    to.held.erase(held);
    from.calls.erase(rm.id);
    forward(self, from, message{0, request_message{rm.id, request_response{{}, cancelled_response(), {}}}});
    return;
  }
  auto& cancel = std::get<request_cancel>(rm.body);
  strip(cancel.metadata);
  forward(self, to, std::move(msg));
}

void on_channel(splice_pointer self, splice_side& to, message& msg) {
  auto& cm = std::get<channel_message>(msg.payload);
  if (auto* c = std::get_if<channel_close>(&cm.body))
    strip(c->metadata);
  else if (auto* r = std::get_if<channel_reset>(&cm.body))
    strip(r->metadata);
  forward(self, to, std::move(msg));
}

void route(splice_pointer self, splice_side& from, message& msg) {
  auto& to = other(self, from);
  if (auto* rm = std::get_if<request_message>(&msg.payload)) {
    if (std::holds_alternative<request_call>(rm->body))
      on_call(self, from, to, msg);
    else if (std::holds_alternative<request_response>(rm->body))
      on_response(self, from, to, msg);
    else
      on_cancel(self, from, to, msg);
  } else if (std::holds_alternative<channel_message>(msg.payload)) {
    on_channel(self, to, msg);
  }
}

/// A link under the splice broke and its session resumed. Both peers must see the break
/// (one of them would otherwise wait for channel items, or retry a call, that the
/// other's resume ended), so we cut the other side's link too; its resume, which we
/// caused, is not passed back. What the old links may have lost is handled as a session
/// handles it for its own calls: Messages not written yet are dropped but Responses
/// (whose callers may still wait), since each peer ends its channels and sends its
/// pending calls again itself; calls in flight become stale, so a call sent again is
/// forwarded again and the callee's first answer still reaches its caller.
void start_episode(splice_pointer self, splice_side& broken, bool cut_other) {
  auto& cut = other(self, broken);
  for (auto* s : {&broken, &cut}) {
    size_t kept = 0;
    for (size_t i = 0; i < s->out.size(); ++i) {
      auto* rm = std::get_if<request_message>(&s->out[i].payload);
      if (rm == nullptr || !std::holds_alternative<request_response>(rm->body))
        continue;
      s->out[kept] = std::move(s->out[i]);
      s->out_bindings[kept++] = s->out_bindings[i];
    }
    s->out.resize(kept);
    s->out_bindings.resize(kept);
    s->held.clear();
    s->stale = std::move(s->calls);
    s->calls.clear();
  }
  if (!cut_other)
    return;
  cut.down = true; // nothing more goes out on the link we are about to cut
  cut.cut_by_us = true;
  if (auto lnk = cut.conduit->current())
    lnk->abort();
}

/// A session of ours resumed on a new link (behaviour 46): both directions of each of its
/// connections here start over with schemas, and what waited for them goes out.
void on_resumed(splice_pointer self, const resumed_msg& m) {
  auto sides = sides_of_sender(self);
  bool passed_on = false;
  for (auto* s : sides) {
    if (s->generation == m.generation)
      continue;
    s->generation = m.generation;
    s->down = false;
    s->schemas_out.reset();
    s->bindings_sent.clear();
    s->schemas_in.reset();
    if (!std::exchange(s->cut_by_us, false) && !passed_on) {
      passed_on = true;
      // A session that serves both sides resumed them both at once: nothing to cut.
      bool cut = sides.size() == 1;
      if (cut && !other(self, *s).resumable) {
        // The other session cannot follow (a stable conduit, or not resumable): its
        // connection closes instead, as after any end of the splice.
        end(self, "connection " + std::to_string(s->id) + " resumed on a new link, and the session of connection "
                    + std::to_string(other(self, *s).id) + " cannot resume to pass the break on");
        return;
      }
      start_episode(self, *s, cut);
    }
  }
}

void on_spliced(splice_pointer self, spliced_msg& m) {
  auto& st = self->state;
  if (m.error) {
    end(self, "connection " + std::to_string(m.id) + " could not be spliced: " + describe(m.error));
    return;
  }
  auto& s = st.sides[0].attached ? st.sides[1] : st.sides[0];
  if (s.attached) {
    end(self, "a third connection was routed to the splice");
    return;
  }
  s.attached = true;
  s.session = caf::actor_cast<caf::actor_addr>(self->current_sender());
  s.session_handle = caf::actor_cast<session_actor>(self->current_sender());
  s.id = m.id;
  s.conduit = std::move(m.conduit);
  s.local_settings = m.local_settings;
  s.peer_settings = m.peer_settings;
  s.generation = m.generation;
  s.resumable = m.resumable;
  if (!both_attached(self))
    return;
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  for (auto& msg : waiting) {
    if (self->getf(caf::abstract_actor::is_terminated_flag))
      return;
    route(self, st.sides[0], msg);
  }
}

caf::error parity_clash(parity local) {
  return make_error(errc::invalid_request,
                    std::string{"cannot splice two connections on which we both allocate "} + to_string(local)
                      + " ids: request and channel ids pass through unchanged, so our parity on one must be the"
                        " peer's parity on the other");
}

proxy_actor::behavior_type splice_behavior(splice_pointer self, log_sink log) {
  self->state.log = std::move(log);
  return {
    [self](spliced_msg& m) {
      on_spliced(self, m);
      flush_if_idle(self);
    },
    [self](message& msg) {
      auto* s = side_of(self, msg.connection_id);
      if (s == nullptr)
        return; // not (or no longer) ours
      if (!both_attached(self)) {
        if (self->state.waiting.size() >= connection_splice::max_waiting) {
          end(self, "more than " + std::to_string(connection_splice::max_waiting)
                      + " messages waited for the second connection");
          return;
        }
        self->state.waiting.push_back(std::move(msg));
        return;
      }
      route(self, *s, msg);
      flush_if_idle(self);
    },
    [self](connection_closed_msg&) { end(self, "a connection closed", true); },
    [self](resumed_msg& m) {
      on_resumed(self, m);
      flush_if_idle(self);
    },
    [self](splice_open_msg& m) {
      // Every handler runs flush_if_idle, or a burst could wait behind this one.
      flush_if_idle(self);
      open_request req{m.settings, std::move(m.metadata), {}, caf::actor_cast<proxy_actor>(self)};
      self->request(caf::actor_cast<session_actor>(m.session), caf::infinite, caf::open_atom::value, std::move(req))
        .then([self](const connection_handle&) { flush_if_idle(self); }, // spliced_msg came first
              [self](const caf::error& e) { end(self, "opening the second connection failed: " + describe(e)); });
    },
    [self](stop_atom) { end(self, "stopped", true); },
  };
}

} // namespace

namespace {

constexpr size_t splice_guard_type = 0x766f78; // "vox": not one of CAF's own token types

/// Ends the splice if its session ends before reading the splice_msg. The session takes
/// it off as it reads that message (from then on the session itself ends the splice), so
/// that it does not keep the splice for as long as the session lives.
class splice_guard : public caf::attachable {
public:
  splice_guard(proxy_actor proxy, connection_id id) : proxy_(std::move(proxy)), id_(id) {}

  void actor_exited(const caf::error&, caf::execution_unit*) override {
    caf::anon_send(proxy_, connection_closed_msg{make_error(errc::session_shutdown, "session ended"), id_});
  }

  bool matches(const token& what) override {
    return what.subtype == splice_guard_type && what.ptr == caf::actor_cast<caf::abstract_actor*>(proxy_);
  }

private:
  proxy_actor proxy_;
  connection_id id_;
};

} // namespace

caf::attachable::token detail::splice_guard_token(const proxy_actor& proxy) {
  return {splice_guard_type, caf::actor_cast<caf::abstract_actor*>(proxy)};
}

struct connection_splice::sides {
  std::mutex mtx;
  int count = 0;
  parity first_local = parity::odd;
};

connection_splice connection_splice::make(caf::actor_system& sys, std::function<void(const std::string&)> log) {
  session_options opts;
  opts.log = std::move(log);
  connection_splice out;
  out.actor_ = sys.spawn(splice_behavior, log_sink_of(opts));
  out.sides_ = std::make_shared<sides>();
  return out;
}

caf::expected<void> connection_splice::claim(parity local) const {
  std::lock_guard<std::mutex> guard{sides_->mtx};
  if (sides_->count >= 2)
    return make_error(errc::invalid_request, "a splice joins two connections; this one has both");
  if (sides_->count == 1 && sides_->first_local == local)
    return parity_clash(local);
  if (sides_->count == 0)
    sides_->first_local = local;
  ++sides_->count;
  return {};
}

caf::expected<void> connection_splice::attach(const connection_handle& conn) const {
  if (auto ok = claim(conn.local_settings.parity); !ok)
    return ok;
  // A session that is gone already never answers: the splice must still end. Attached
  // before the splice_msg goes, so that the session can take it off as it reads that.
  caf::actor_cast<caf::abstract_actor*>(conn.session)->attach(std::make_unique<splice_guard>(actor_, conn.id));
  // Sent from this thread, so that it is ahead of whatever the session reads next.
  caf::anon_send(conn.session, splice_msg{conn.id, actor_});
  return {};
}

caf::expected<accept_connection> connection_splice::accept(const connection_settings& peer, vox::metadata md) const {
  connection_settings ours{opposite(peer.parity), peer.max_concurrent_requests};
  if (auto ok = claim(ours.parity); !ok)
    return std::move(ok.error());
  accept_connection yes;
  yes.settings = ours;
  yes.metadata = std::move(md);
  yes.splice = actor_;
  return yes;
}

caf::expected<void> connection_splice::open(const session_actor& session, connection_settings settings,
                                            vox::metadata md) const {
  {
    std::lock_guard<std::mutex> guard{sides_->mtx};
    if (sides_->count == 1)
      settings.parity = opposite(sides_->first_local);
  }
  if (auto ok = claim(settings.parity); !ok)
    return ok;
  caf::anon_send(actor_, splice_open_msg{caf::actor_cast<caf::actor>(session), settings, propagated(md)});
  return {};
}

void connection_splice::stop() const {
  if (actor_)
    caf::anon_send(actor_, stop_atom::value);
}

caf::expected<connection_splice> proxy_connections(caf::actor_system& sys, const connection_handle& a,
                                                   const connection_handle& b) {
  if (a.local_settings.parity == b.local_settings.parity)
    return parity_clash(a.local_settings.parity);
  auto splice = connection_splice::make(sys);
  if (auto ok = splice.attach(a); !ok)
    return std::move(ok.error());
  if (auto ok = splice.attach(b); !ok)
    return std::move(ok.error());
  return splice;
}

} // namespace vox
