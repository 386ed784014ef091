#include "actors/driver_channels.hpp"

#include <vector>

namespace vox::detail {

namespace {

// r[impl rpc.flow-control.credit.grant]
uint32_t grant_batch(uint32_t initial) { return std::max<uint32_t>(initial / 2, 1); }

caf::error reset_error() { return make_error(errc::closed, "channel was reset"); }

} // namespace

bool driver_channels::declare(const channel_decl& decl, bool active, uint64_t generation) {
  if (decl.id == 0)
    return false;
  auto [i, fresh] = slots_.try_emplace(decl.id);
  auto& s = i->second;
  if (!fresh) {
    // Only a slot one of our ends opened early (see slot_for) is waiting for its call.
    if (active || s.active || !ours(decl.id))
      return false;
    return true;
  }
  s.decl = decl;
  s.credit = decl.initial_credit;
  s.active = active;
  s.generation = generation;
  return true;
}

bool driver_channels::stale_end(channel_id id, uint64_t generation) const {
  if (auto i = slots_.find(wire(id)); i != slots_.end())
    return i->second.generation != generation;
  return generation < generation_;
}

driver_channels::slot* driver_channels::slot_for(const channel_decl& decl) {
  auto i = slots_.find(wire(decl.id));
  if (i != slots_.end())
    return &i->second;
  if (!ours(decl.id) || decl.id == 0)
    return nullptr; // a handler's end whose channel is finished
  auto& s = slots_[decl.id];
  s.decl = decl;
  s.credit = decl.initial_credit;
  s.generation = generation_;
  return &s;
}

void driver_channels::activate(channel_id id) {
  auto i = slots_.find(id);
  if (i == slots_.end())
    return;
  i->second.active = true;
  if (auto early = std::move(i->second.early)) {
    apply(i, *early);
    return;
  }
  serve(i);
}

void driver_channels::fail(channel_id id, const caf::error& reason) {
  auto i = slots_.find(id);
  if (i == slots_.end())
    return;
  // Kept until the end hears of it (it may not have asked yet) or lets go.
  i->second.active = true;
  i->second.early.reset();
  i->second.failure = reason;
  serve(i);
}

uint64_t driver_channels::want_credit(const channel_request& req, caf::typed_response_promise<uint32_t> rp) {
  auto* s = slot_for(req.channel);
  if (s == nullptr) {
    rp.deliver(make_error(errc::closed, "channel is closed"));
    return 0;
  }
  if (s->credit_waiter.pending())
    s->credit_waiter.deliver(make_error(errc::invalid_request, "a newer credit request took over"));
  s->credit_waiter = std::move(rp);
  auto serial = s->serial = next_serial_++;
  auto id = wire(req.channel.id);
  serve(slots_.find(id));
  auto i = slots_.find(id);
  return i != slots_.end() && i->second.credit_waiter.pending() ? serial : 0;
}

uint64_t driver_channels::want_items(const channel_request& req, caf::typed_response_promise<channel_batch> rp) {
  auto* s = slot_for(req.channel);
  if (s == nullptr) {
    rp.deliver(make_error(errc::closed, "channel is closed"));
    return 0;
  }
  if (s->items_waiter.pending())
    s->items_waiter.deliver(make_error(errc::invalid_request, "a newer items request took over"));
  s->items_waiter = std::move(rp);
  auto serial = s->serial = next_serial_++;
  auto id = wire(req.channel.id);
  serve(slots_.find(id));
  auto i = slots_.find(id);
  return i != slots_.end() && i->second.items_waiter.pending() ? serial : 0;
}

void driver_channels::expire(channel_id id, uint64_t serial) {
  auto i = slots_.find(wire(id));
  if (i == slots_.end() || i->second.serial != serial)
    return;
  auto& s = i->second;
  if (s.credit_waiter.pending()) {
    s.credit_waiter.deliver(make_error(errc::timeout, s.active ? "no channel credit before the deadline"
                                                               : "the channel's call did not go out before the deadline"));
    s.credit_waiter = {};
  }
  if (s.items_waiter.pending()) {
    s.items_waiter.deliver(make_error(errc::timeout, "no channel item before the deadline"));
    s.items_waiter = {};
  }
}

void driver_channels::control(channel_control_msg& msg) {
  // Only a Close may come before the call it belongs to (another thread made the call);
  // a reset or release of a channel that is gone has nothing left to do.
  if (msg.what == channel_control_msg::kind::close ? slot_for(msg.channel) == nullptr
                                                   : slots_.count(wire(msg.channel.id)) == 0)
    return;
  auto i = slots_.find(wire(msg.channel.id));
  if (!i->second.active) {
    i->second.early = std::move(msg); // applied once the Call is out
    return;
  }
  apply(i, msg);
}

void driver_channels::apply(iterator i, channel_control_msg& msg) {
  auto id = i->first;
  auto& s = i->second;
  using kind = channel_control_msg::kind;
  bool open = !s.failure && !s.peer_closed;
  if (msg.what == kind::close && open) {
    // r[impl rpc.channel.close]
    write(id, channel_close{std::move(msg.metadata)});
  } else if (msg.what == kind::reset && open) {
    // r[impl rpc.channel.reset]
    write(id, channel_reset{std::move(msg.metadata)});
  }
  auto gone = make_error(errc::closed, "channel end let go");
  if (s.credit_waiter.pending())
    s.credit_waiter.deliver(gone);
  if (s.items_waiter.pending())
    s.items_waiter.deliver(gone);
  erase(i);
}

void driver_channels::serve(iterator i) {
  auto id = i->first;
  auto& s = i->second;
  bool finished = false;
  if (s.credit_waiter.pending()) {
    if (s.failure) {
      s.credit_waiter.deliver(s.failure);
      s.credit_waiter = {};
      finished = true;
    } else if (s.active && s.credit > 0) {
      if (conduit_->congested()) {
        held_ = true;
      } else {
        auto n = static_cast<uint32_t>(std::min<uint64_t>(s.credit, max_credit_per_answer));
        s.credit -= n;
        s.credit_waiter.deliver(n);
        s.credit_waiter = {};
      }
    }
  }
  if (s.items_waiter.pending()) {
    if (!s.items.empty()) {
      channel_batch batch{{std::make_move_iterator(s.items.begin()), std::make_move_iterator(s.items.end())},
                          s.peer_closed};
      s.items.clear();
      // Credit goes back as the end takes items (it asks again only once it consumed what
      // it took before), in grants of max(N/2, 1) as the reference sends them.
      s.handed += static_cast<uint32_t>(batch.items.size());
      auto step = grant_batch(s.decl.initial_credit);
      while (!s.peer_closed && !s.failure && s.handed >= step) {
        write(id, channel_grant_credit{step});
        s.credit += step;
        s.handed -= step;
      }
      finished = batch.closed;
      s.items_waiter.deliver(std::move(batch));
      s.items_waiter = {};
    } else if (s.peer_closed) {
      s.items_waiter.deliver(channel_batch{{}, true});
      s.items_waiter = {};
      finished = true;
    } else if (s.failure) {
      s.items_waiter.deliver(s.failure);
      s.items_waiter = {};
      finished = true;
    }
  }
  if (finished)
    erase(i);
}

void driver_channels::serve_held() {
  held_ = false;
  std::vector<channel_id> waiting;
  for (auto& [id, s] : slots_)
    if (s.credit_waiter.pending())
      waiting.push_back(id);
  for (auto id : waiting)
    if (auto i = slots_.find(id); i != slots_.end())
      serve(i);
}

bool driver_channels::on_message(channel_message& msg) {
  auto i = slots_.find(msg.id);
  if (i == slots_.end() || !i->second.active)
    return true; // unknown or finished channel: dropped, as the reference drops late items
  auto& s = i->second;
  bool ok = true;
  std::visit(
    [&](auto& body) {
      using T = std::decay_t<decltype(body)>;
      if constexpr (std::is_same_v<T, channel_item>) {
        if (!s.decl.local_receives || s.peer_closed || s.failure)
          return;
        // r[impl rpc.flow-control.credit.exhaustion]
        // Past its credit the peer is buffering into us unasked.
        if (s.credit == 0) {
          ok = false;
          return;
        }
        --s.credit;
        s.items.push_back(std::move(body.item));
      } else if constexpr (std::is_same_v<T, channel_close>) {
        if (s.decl.local_receives)
          s.peer_closed = true;
        else if (!s.failure)
          s.failure = make_error(errc::closed, "the receiver closed the channel");
      } else if constexpr (std::is_same_v<T, channel_reset>) {
        if (!s.failure)
          s.failure = reset_error();
      } else {
        // r[impl rpc.flow-control.credit.grant]
        if (!s.decl.local_receives)
          s.credit += body.additional;
      }
    },
    msg.body);
  if (ok)
    serve(i);
  return ok;
}

void driver_channels::close_all(const caf::error& reason) {
  auto slots = std::move(slots_);
  slots_.clear();
  aliases_.clear();
  for (auto& [id, s] : slots) {
    if (s.credit_waiter.pending())
      s.credit_waiter.deliver(reason);
    if (s.items_waiter.pending())
      s.items_waiter.deliver(reason);
  }
}

void driver_channels::resumed(uint64_t generation, const caf::error& reason, const std::vector<channel_id>& keep) {
  std::unordered_map<channel_id, slot> kept;
  for (auto id : keep)
    if (auto i = slots_.find(id); i != slots_.end()) {
      i->second.credit = i->second.decl.initial_credit;
      i->second.handed = 0;
      kept.emplace(id, std::move(i->second));
      slots_.erase(i);
    }
  close_all(reason);
  slots_ = std::move(kept);
  for (auto& [id, s] : slots_)
    if (s.decl.id != id)
      aliases_[s.decl.id] = id;
  generation_ = generation;
  held_ = false;
}

bool driver_channels::rebind(channel_id from, channel_id to) {
  auto i = slots_.find(from);
  if (i == slots_.end() || slots_.count(to) > 0)
    return false;
  auto s = std::move(i->second);
  erase(i);
  if (s.decl.id != to)
    aliases_[s.decl.id] = to;
  slots_.emplace(to, std::move(s));
  return true;
}

void driver_channels::erase(iterator i) {
  if (i->second.decl.id != i->first)
    aliases_.erase(i->second.decl.id);
  slots_.erase(i);
}

channel_id driver_channels::wire(channel_id end_id) const {
  auto a = aliases_.find(end_id);
  return a == aliases_.end() ? end_id : a->second;
}

bool driver_channels::receives(channel_id id) const {
  auto i = slots_.find(id);
  return i != slots_.end() && i->second.decl.local_receives && !i->second.failure && !i->second.peer_closed;
}

void driver_channels::write(channel_id id, channel_body body) {
  // A failed write means the link broke; the session hears it from the link itself.
  (void) conduit_->send(message{conn_, channel_message{id, std::move(body)}}, generation_, owner_->context());
}

} // namespace vox::detail
