#include "actors/session_input.hpp"

#include <atomic>

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/message_id.hpp>

namespace vox {

session_input::session_input(const session_actor& session, uint64_t epoch)
  : session_(caf::actor_cast<caf::weak_actor_ptr>(session)), epoch_(epoch) {}

uint64_t session_input::next_epoch() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

template <class T>
void session_input::deliver(T&& x, caf::execution_unit* ctx) {
  if (auto hdl = session_.lock())
    hdl->get()->enqueue(nullptr, caf::make_message_id(), caf::make_message(std::forward<T>(x)), ctx);
}

void session_input::on_frame(byte_span payload, caf::execution_unit* ctx) {
  if (failed_)
    return;
  auto msg = decode_message(payload);
  if (!msg) {
    failed_ = true;
    deliver(link_down_msg{std::move(msg.error()), epoch_}, ctx);
    return;
  }
  deliver(inbound_msg{std::move(*msg), epoch_}, ctx);
}

void session_input::on_end(caf::error reason, caf::execution_unit* ctx) {
  if (!failed_)
    deliver(link_down_msg{std::move(reason), epoch_}, ctx);
}

} // namespace vox
