#include "actors/session_input.hpp"

#include <atomic>

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/message_id.hpp>
#include <caf/scheduled_actor.hpp>

namespace vox {

namespace detail {

void inbound_routes::add(connection_id id, const driver_actor& driver) {
  std::lock_guard<std::mutex> guard{mtx_};
  drivers_[id] = driver;
}

void inbound_routes::remove(connection_id id) {
  std::lock_guard<std::mutex> guard{mtx_};
  drivers_.erase(id);
}

void inbound_routes::clear() {
  std::lock_guard<std::mutex> guard{mtx_};
  drivers_.clear();
}

driver_actor inbound_routes::find(connection_id id, uint64_t given) const {
  // Acquire: a table change made while handling those Messages is visible below.
  if (handled_.load(std::memory_order_acquire) != given)
    return {};
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = drivers_.find(id);
  return i == drivers_.end() ? driver_actor{} : i->second;
}

} // namespace detail

session_input::session_input(const session_actor& session, std::shared_ptr<const detail::inbound_routes> routes,
                             uint64_t epoch)
  : session_(caf::actor_cast<caf::weak_actor_ptr>(session)), routes_(std::move(routes)), epoch_(epoch) {}

uint64_t session_input::next_epoch() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

template <class T>
void session_input::deliver(T&& x, caf::execution_unit* ctx) {
  if (auto hdl = session_.lock())
    hdl->get()->enqueue(nullptr, caf::make_message_id(), caf::make_message(std::forward<T>(x)), ctx);
}

namespace {

/// True while the session waits for messages with nothing left to do. Anything sent to
/// it earlier (an application's splice or close, a Message this input gave it) has been
/// handled, with its effect on the routes; the blocked mark is set after that work and
/// read here with sequential consistency.
bool idle(const caf::strong_actor_ptr& session) {
  // A session is an event-based actor; scheduled_actor derives from abstract_actor
  // without virtual bases, so the static cast is exact.
  return static_cast<caf::scheduled_actor*>(session->get())->mailbox().blocked();
}

} // namespace

void session_input::on_frame(byte_span payload, caf::execution_unit* ctx) {
  if (failed_)
    return;
  auto msg = decode_message(payload);
  if (!msg) {
    failed_ = true;
    deliver(link_down_msg{std::move(msg.error()), epoch_}, ctx);
    return;
  }
  auto session = session_.lock();
  if (!session)
    return;
  if (std::holds_alternative<request_message>(msg->payload) || std::holds_alternative<channel_message>(msg->payload)) {
    if (idle(session)) {
      if (auto driver = routes_->find(msg->connection_id, given_)) {
        caf::actor_cast<caf::abstract_actor*>(driver)->enqueue(nullptr, caf::make_message_id(),
                                                               caf::make_message(std::move(*msg)), ctx);
        return;
      }
    }
  }
  ++given_;
  session->get()->enqueue(nullptr, caf::make_message_id(), caf::make_message(inbound_msg{std::move(*msg), epoch_}),
                          ctx);
}

void session_input::on_end(caf::error reason, caf::execution_unit* ctx) {
  if (!failed_)
    deliver(link_down_msg{std::move(reason), epoch_}, ctx);
}

} // namespace vox
