#include "actors/handles.hpp"

#include <caf/send.hpp>

#include "actors/driver_actor.hpp"
#include "protocol/result.hpp"

namespace vox {

namespace detail {

/// Lives as long as any caller of its connection; its destruction is the "last caller
/// dropped" event of rpc.caller.liveness.
class caller_guard {
public:
  caller_guard(session_actor session, connection_id id) : session_(std::move(session)), id_(id) {}
  ~caller_guard() {
    // r[impl rpc.caller.liveness.last-drop-closes-connection]
    caf::anon_send(session_, caller_dropped_msg{id_});
  }

private:
  session_actor session_;
  connection_id id_;
};

} // namespace detail

// r[impl rpc.caller.liveness.refcounted]
caller::caller(const connection_handle& conn) : conn_(conn) {
  if (!conn.callers)
    return;
  std::lock_guard<std::mutex> guard{conn.callers->mtx};
  guard_ = conn.callers->guard.lock();
  if (!guard_) {
    guard_ = std::make_shared<detail::caller_guard>(conn.session, conn.id);
    conn.callers->guard = guard_;
  }
}

struct reply_sink::state {
  driver_actor driver;
  request_id id = 0;
  std::atomic<bool> done{false};
  std::shared_ptr<detail::call_control> control;

  ~state() {
    if (!done.load())
      caf::anon_send(driver, reply_atom::value,
                     reply_msg{id, {}, cancelled_response(), control ? control->response_schemas.load() : nullptr,
                               control, true});
  }
};

reply_sink::reply_sink(driver_actor driver, request_id id, std::shared_ptr<detail::call_control> control)
  : state_(std::make_shared<state>()) {
  state_->driver = std::move(driver);
  state_->id = id;
  state_->control = std::move(control);
}

bool reply_sink::cancelled() const { return state_ && state_->control && state_->control->cancelled.load(); }

void reply_sink::describe_response(const schema::schema_payload* schemas, method_traits traits) const {
  if (state_ && state_->control) {
    state_->control->response_schemas.store(schemas);
    state_->control->idempotent.store(traits.idempotent);
    state_->control->persistent.store(traits.persistent);
  }
}

void reply_sink::reply(payload ret, vox::metadata md, const schema::schema_payload* schemas) const {
  if (!state_ || state_->done.exchange(true))
    return;
  reply_msg r{state_->id, std::move(md), std::move(ret), schemas, state_->control};
  if (auto* slot = detail::current_immediate_reply(); slot && state_->control && slot->call == state_->control.get()) {
    slot->reply = std::move(r);
    return;
  }
  caf::anon_send(state_->driver, reply_atom::value, std::move(r));
}

bool reply_sink::replied() const { return state_ && state_->done.load(); }

request_id reply_sink::id() const { return state_ ? state_->id : 0; }

payload cancelled_response() {
  return payload{encode(call_result<unit>{std::in_place_index<1>, cancelled{}})};
}

payload unknown_method_response() {
  return payload{encode(call_result<unit>{std::in_place_index<1>, unknown_method{}})};
}

payload indeterminate_response() {
  return payload{encode(call_result<unit>{std::in_place_index<1>, indeterminate{}})};
}

payload invalid_payload_response(std::string message) {
  return payload{encode(call_result<unit>{std::in_place_index<1>, invalid_payload{std::move(message)}})};
}

} // namespace vox
