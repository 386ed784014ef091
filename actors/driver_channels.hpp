// The channels of one connection as its driver actor holds them: credit both ways, the
// items that arrived and are not taken yet, and the requests of local ends that wait. Only
// the driver touches it, so it needs no lock.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

#include <caf/local_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/interfaces.hpp"
#include "transport/bare_conduit.hpp"

namespace vox::detail {

class driver_channels {
public:
  /// `owner` is the driver: what the table writes goes out on its execution unit.
  driver_channels(const caf::local_actor* owner, connection_id conn, parity local,
                  std::shared_ptr<bare_conduit> conduit)
    : owner_(owner), conn_(conn), local_(local), conduit_(std::move(conduit)), generation_(conduit_->generation()) {}

  /// A channel of a call: the handler's (`active` at once) or the caller's (active once its
  /// Call is on the wire, so that no item overtakes it). False: the id is 0 or in use.
  bool declare(const channel_decl& decl, bool active, uint64_t generation);
  /// The Call announcing `id` is out: items and credit may flow.
  void activate(channel_id id);
  /// The call announcing `id` never went out (send failure, cancelled while queued).
  void fail(channel_id id, const caf::error& reason);

  /// A sending end asks for credit. Returns the serial of the stored request when it has
  /// to wait (the driver arms its timeout), 0 when it was answered.
  uint64_t want_credit(const channel_request& req, caf::typed_response_promise<uint32_t> rp);
  /// A receiving end asks for items; same convention.
  uint64_t want_items(const channel_request& req, caf::typed_response_promise<channel_batch> rp);
  /// The timeout of request `serial` on `id` passed.
  void expire(channel_id id, uint64_t serial);
  void control(channel_control_msg& msg);

  /// An inbound ChannelMessage; false when the peer sent an item beyond its credit.
  [[nodiscard]] bool on_message(channel_message& msg);
  /// The connection is gone: every waiting request fails with `reason`.
  void close_all(const caf::error& reason);
  /// The session resumed on a new link (conduit `generation`): every channel ends with
  /// `reason` (the peer forgot them too, and items may have been lost with the old link).
  /// Channels in `keep` (receiving ones of a call that is sent again) stay, with their
  /// items, and the peer's credit back at the initial value for its new run.
  void resumed(uint64_t generation, const caf::error& reason, const std::vector<channel_id>& keep = {});
  /// The channel `from` goes on under the fresh id `to` (its call runs again after a
  /// resume, with new ids: testbed-service.md §4); its end keeps asking by the id it was
  /// bound with. False if `from` is unknown or `to` in use.
  bool rebind(channel_id from, channel_id to);
  /// True if `id` is a channel we receive on.
  bool receives(channel_id id) const;
  /// True if an end bound in conduit generation `generation` no longer owns channel `id`:
  /// a resume ended its channel, and the id may belong to a new run of its call.
  bool stale_end(channel_id id, uint64_t generation) const;

  /// Soft backpressure: while the link is congested, credit requests that could be
  /// answered wait instead (a sending end then stops writing). True if one does.
  bool credit_held() const { return held_; }
  /// Answers the held credit requests (holding them again if the link is still congested).
  void serve_held();

  size_t size() const { return slots_.size(); }

  /// Most credit one answer hands a sending end. An end writes what it holds without
  /// asking again, so a peer's large grant must not let it write past the link's
  /// high-water mark unchecked: each answer is a point where a congested link holds it.
  /// The reference's own windows (16, grants of 8) never reach this.
  static constexpr uint32_t max_credit_per_answer = 64;

private:
  struct slot {
    channel_decl decl;
    bool active = false;
    /// Sending: what the peer allows and no end holds yet. Receiving: what the peer may
    /// still send (initial plus granted, minus received).
    uint64_t credit = 0;
    uint32_t handed = 0; ///< receiving: items taken since the last grant
    std::deque<payload> items;
    bool peer_closed = false;
    caf::error failure; ///< reset by the peer, or the call never went out
    /// A close or reset the end asked for before its Call was out.
    std::optional<channel_control_msg> early;
    caf::typed_response_promise<uint32_t> credit_waiter;
    caf::typed_response_promise<channel_batch> items_waiter;
    uint64_t serial = 0;
    uint64_t generation = 0; ///< of the end that owns it (see stale_end)
  };
  using iterator = std::unordered_map<channel_id, slot>::iterator;

  /// The slot of a request from one of our ends. An end of ours may ask before the driver
  /// saw its call (another thread made the call): such a slot waits for `declare`.
  slot* slot_for(const channel_decl& decl);
  bool ours(channel_id id) const { return (id % 2 == 1) == (local_ == parity::odd); }
  /// Answers what waits on `i` if it can; erases the slot once its end has seen the end.
  void serve(iterator i);
  void apply(iterator i, channel_control_msg& msg);
  void write(channel_id id, channel_body body);
  void erase(iterator i);
  /// The id on the wire of the channel an end was bound to as `end_id`.
  channel_id wire(channel_id end_id) const;

  const caf::local_actor* owner_;
  connection_id conn_;
  parity local_;
  std::shared_ptr<bare_conduit> conduit_;
  uint64_t generation_; ///< of the link our channels live on
  /// By the id on the wire; a slot's `decl.id` is the id its end was bound with.
  std::unordered_map<channel_id, slot> slots_;
  /// End ids of rebound channels → their ids on the wire.
  std::unordered_map<channel_id, channel_id> aliases_;
  uint64_t next_serial_ = 1;
  bool held_ = false;
};

} // namespace vox::detail
