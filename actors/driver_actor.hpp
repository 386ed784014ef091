// The connection driver: one actor per connection, root or virtual.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "actors/channel.hpp"
#include "actors/driver_channels.hpp"
#include "actors/handles.hpp"
#include "actors/interfaces.hpp"
#include "actors/operation_store.hpp"
#include "protocol/schema_tracker.hpp"
#include "transport/bare_conduit.hpp"

namespace vox {

/// Everything a driver needs from its session.
struct driver_config {
  connection_id id = 0;
  connection_settings local_settings; ///< our parity allocates request ids
  connection_settings peer_settings;
  std::shared_ptr<bare_conduit> conduit; ///< the session's conduit; drivers write directly
  session_actor session;
  call_handler handler; ///< serves inbound calls; none answers UnknownMethod
  std::shared_ptr<detail::channel_context> channels; ///< shared with the connection's handles
  log_sink log;                                      ///< the session's diagnostics
  /// The peer said supports_retry: our calls carry operation ids and are sent again
  /// after a resume.
  bool peer_supports_retry = false;
  /// We said supports_retry: the peer's calls with operation ids go through a store.
  std::optional<detail::operation_store::limits> operations;
};

namespace detail {

/// A handler's answer given while its driver still runs the handler, as most handlers
/// answer. The driver sends it when the handler returns instead of letting it make a trip
/// through the driver's own mailbox (a message allocated, queued and dispatched per call).
/// Only the thread running the handler, and only that call's sinks, use the slot; any
/// other answer (a later one, from another thread, or for another call) is a message.
struct immediate_reply {
  const call_control* call = nullptr;
  std::optional<reply_msg> reply;
};

/// The slot of the call whose handler runs on this thread, or null.
immediate_reply*& current_immediate_reply() noexcept;

} // namespace detail

struct driver_state {
  // Not an aggregate: CAF 0.17 would otherwise construct it from the actor pointer.
  driver_state() = default;

  driver_config cfg;
  uint64_t next_request_id = 1;
  /// Outgoing calls waiting for their Response.
  std::unordered_map<request_id, caf::typed_response_promise<call_response>> pending;
  /// Pending calls that carry channels: a resume fails them (their channels end).
  std::unordered_set<request_id> pending_with_channels;
  /// Cancel tags of outgoing calls (tag → request id).
  std::unordered_map<uint64_t, request_id> tags;
  /// Outgoing calls waiting for the peer's max_concurrent_requests to allow them, in order.
  std::deque<std::pair<outgoing_call, caf::typed_response_promise<call_response>>> queued;

  /// An inbound call whose Response is not sent yet.
  struct inflight_call {
    method_id_t method_id = 0;
    std::shared_ptr<detail::call_control> control;
    bool has_channels = false; ///< the handler bound channels of the call
    std::optional<uint64_t> operation;
    channel_retry_mode retry_mode = channel_retry_mode::none;
  };
  std::unordered_map<request_id, inflight_call> inflight;
  /// Schema exchange on this connection (wire-format.md §7).
  schema::send_tracker schemas_out;
  schema::recv_tracker schemas_in;
  std::unordered_set<method_id_t> args_schemas_sent;
  std::unordered_set<method_id_t> response_schemas_sent;
  /// The connection's channels (created with the config).
  std::optional<detail::driver_channels> channels;
  /// Soft backpressure: the link is congested and will send link_drained_atom.
  bool awaiting_drain = false;
  /// The conduit generation we send on; behind the conduit's between a resume and our
  /// resumed_msg, when nothing may go out (the peer expects schemas again).
  uint64_t generation = 0;
  /// Responses that could not go out (the link broke, or a resume is under way), in
  /// order; their inflight entries stay until they are sent, which bounds them by our
  /// max_concurrent_requests.
  std::vector<reply_msg> held_replies;
  /// A send failed: the link is dead; nothing more goes out until a resume (or the end).
  bool link_failed = false;

  // -- operation ids (session-behaviours.md §2.9) --
  /// What a pending call sent, to send it again after a resume (only while the peer
  /// supports retry), by request id: re-sent in the order they were first sent.
  struct sent_call {
    method_id_t method = 0;
    vox::metadata metadata;
    payload args;
    const schema::schema_payload* args_schemas = nullptr;
    std::vector<channel_decl> channels;
    std::vector<uint32_t> channel_offsets; ///< where `channels`' ids sit in `args`
  };
  std::map<request_id, sent_call> resend;
  uint64_t next_operation_id = 1;
  /// The peer's operations on this connection (when we advertised supports_retry).
  std::optional<detail::operation_store> operations;

  /// Fails every pending call with `reason` (a dead actor's promises are not failed by
  /// CAF 0.17 itself, so this runs on every exit path).
  void fail_pending(const caf::error& reason);
  ~driver_state();

  static inline const char* name = "vox.driver";
};

using driver_pointer = driver_actor::stateful_pointer<driver_state>;

/// The driver's behaviour; spawned by the session (monitored), never by applications.
driver_actor::behavior_type driver_behavior(driver_pointer self, driver_config cfg);

} // namespace vox
