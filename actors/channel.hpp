// Channels: streams of items inside a call, with credit-based flow control
// (testbed-service.md §1 "Channel directions" and "Initial credit"; wire-format.md §3.2.4).
//
// In a method signature, `rx<T>` means the handler receives (the caller sends) and `tx<T>`
// means the handler sends (the caller receives). `rx<T, N>` / `tx<T, N>` declare the
// channel's initial credit N (default 16, the reference's constant); both peers must
// declare the same N, as the credit is not part of the schema.
//
// Event-based use (no thread waits; callbacks run in the actor `self`):
//
//   auto [tx, rx] = vox::channel<int32_t>();           // two ends of one channel, unbound
//   client.request<sum>(self, {rx}, on_result);        // `rx` travels in the args as its id
//   tx.send_all(self, generator, on_done);             // items go out as credit allows
//
//   d.on<sum>([](caf::event_based_actor* self, vox::rx<int32_t> in, responder r) {
//     auto total = std::make_shared<int64_t>(0);
//     in.for_each(self, [total](int32_t v) { *total += v; },
//                 [total, r](const caf::error& e) { if (!e) r.ok(*total); });
//   });
//
// Blocking use, from a plain thread (never from an actor's message handler): `tx.send`,
// `rx.recv` and their `_for` forms wait for credit or items. They are built on the same
// requests as the event-based ones, each waiting in a scoped_actor of its own.
//
// Where the state lives: a channel's credit, the items that arrived and its open/closed
// state belong to the connection's driver actor (driver_channels.hpp). An end asks its
// driver for credit (channel_credit_atom) or items (channel_recv_atom) and keeps what it
// got locally; a sending end with credit writes its items straight to the connection's
// conduit. The receiver grants credit back (max(N/2, 1) at a time) as its end takes the
// items from the driver, i.e. once the end has consumed the previous batch, so a slow
// consumer holds the producer back and at most 2N items of one channel are in memory.
//
// An end is used by one actor or thread at a time; its copies share one end. From an
// actor, make the call that carries a channel before using the end you kept: an end no
// call carries yet fails at once (a blocking form waits for the call instead).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/interfaces.hpp"
#include "protocol/codec.hpp"
#include "protocol/message.hpp"
#include "transport/bare_conduit.hpp"

namespace vox {

/// Credit a channel starts with (Rust DEFAULT_CHANNEL_CREDIT, TS DEFAULT_INITIAL_CREDIT).
constexpr uint32_t default_channel_credit = 16;

namespace detail {

class driver_channels;

/// What the channels of one connection share. Thread-safe.
struct channel_context {
  channel_context(connection_id c, parity local, std::shared_ptr<bare_conduit> out, caf::actor_system& sys)
    : conn(c), conduit(std::move(out)), system(&sys), next_id(local == parity::odd ? 1 : 2) {}

  /// A fresh id of our parity (r[rpc.channel.binding]).
  channel_id allocate() { return next_id.fetch_add(2, std::memory_order_relaxed); }

  const connection_id conn;
  const std::shared_ptr<bare_conduit> conduit;
  caf::actor_system* const system;
  std::atomic<uint64_t> next_id;
  /// Set by the driver when the connection is gone: ends stop writing items.
  std::atomic<bool> closed{false};
};

/// Where a bound end belongs.
struct channel_binding {
  std::shared_ptr<channel_context> context;
  driver_actor driver;
  channel_decl decl;
  /// The conduit generation it was bound in: a resume ends every channel, so an end
  /// bound before it must not write to the new link.
  uint64_t generation = 0;
};

/// One local channel end, shared by the copies of its handle. Its binding is written once
/// (by the codec) and read by any thread; the rest is the state of whoever uses the end.
class channel_end {
public:
  explicit channel_end(uint32_t initial_credit) : initial_credit_(initial_credit) {}
  channel_end(const channel_end&) = delete;
  channel_end& operator=(const channel_end&) = delete;
  /// The last handle is gone: a sending end closes (as Rust drops a Tx), a receiving end
  /// is released (its driver drops later items).
  ~channel_end();

  uint32_t initial_credit() const { return initial_credit_; }
  /// Binds the end to a channel of a call; false if it is bound already.
  bool bind(channel_binding b);
  /// The binding, or null while no call carries the end yet.
  const channel_binding* binding() const { return bound_.load(std::memory_order_acquire) ? &binding_ : nullptr; }
  /// Waits (blocking API) until a call binds the end; null when `deadline` passes.
  const channel_binding* wait_bound(std::optional<std::chrono::steady_clock::time_point> deadline) const;
  /// The call that was to carry the end failed before it was sent: the end is dead.
  void abandon(caf::error reason);

  // -- the user's side (one actor or thread at a time) --
  /// Why the end cannot be used any more, or none.
  caf::error failure() const;
  bool reset_requested() const { return reset_.load(std::memory_order_acquire); }
  /// Our sending end was closed, or the peer's close reached our receiving end.
  bool closed() const { return closed_; }
  uint32_t credit() const { return credit_; }
  std::deque<payload>& items() { return items_; }

  /// Writes one item with one credit (there must be credit). An actor passes its
  /// `context()` as `ctx` (see `link::send`).
  caf::error write_item(payload item, caf::execution_unit* ctx = nullptr);
  /// Writes items with one credit each (there must be enough), in one link write.
  caf::error write_items(std::vector<payload> items, caf::execution_unit* ctx = nullptr);
  /// Why a sending end cannot send now (no error: it has credit or may ask for it).
  caf::error send_check() const;
  void close(vox::metadata md);
  /// The one operation any thread may call while another uses the end (e.g. to stop a
  /// blocked `recv`): ChannelReset goes out and the end fails from then on.
  void reset(vox::metadata md);

  /// The driver's answer to a credit request.
  caf::error take_credit(caf::expected<uint32_t> credit);
  /// The driver's answer to an items request (a failure is kept in failure()).
  void take_batch(caf::expected<channel_batch> batch);

  /// Blocking: waits for credit (`deadline`: until then). No error: credit() > 0.
  caf::error wait_credit(std::optional<std::chrono::steady_clock::time_point> deadline);
  /// Blocking: waits for items or the end of the channel.
  caf::error wait_items(std::optional<std::chrono::steady_clock::time_point> deadline);

  channel_request request(std::chrono::milliseconds timeout = {}) const {
    return {binding_.decl, timeout, binding_.generation};
  }

private:
  void control(channel_control_msg::kind what, vox::metadata md);
  caf::error take_error(caf::error e);

  const uint32_t initial_credit_;
  mutable std::mutex bind_mtx_;
  mutable std::condition_variable bind_cv_;
  std::atomic<bool> bound_{false};
  channel_binding binding_;

  uint32_t credit_ = 0;
  std::deque<payload> items_;
  bool closed_ = false;
  caf::error failure_;
  std::atomic<bool> reset_{false};
};

using end_ptr = std::shared_ptr<channel_end>;

/// Where Tx/Rx values met while encoding or decoding arguments are bound: set by the
/// client while it encodes a call and by the driver while its handler decodes one.
struct channel_binder {
  std::shared_ptr<channel_context> context;
  driver_actor driver;
  /// Handler side: the driver's channels, which take the peer's ids at once.
  driver_channels* table = nullptr;
  std::vector<channel_decl> declared{};
  std::vector<end_ptr> ends{};
  /// Where each declared channel's id starts in the encoded arguments.
  std::vector<uint32_t> offsets{};
  bool failed = false;
  /// The conduit generation the ends are bound in (see channel_binding).
  uint64_t generation = 0;
};

channel_binder*& current_binder();

/// Sets the current binder for the lifetime of the scope.
class binder_scope {
public:
  explicit binder_scope(channel_binder& b) : prev_(current_binder()) { current_binder() = &b; }
  ~binder_scope() { current_binder() = prev_; }
  binder_scope(const binder_scope&) = delete;
  binder_scope& operator=(const binder_scope&) = delete;

private:
  channel_binder* prev_;
};

/// Binds `end` while encoding (`local_receives`: the end the caller keeps receives) and
/// writes its id; every Tx/Rx argument is its ChannelId varint on the wire
/// (wire-format.md §3.2.4).
void write_channel(postcard::writer& w, const end_ptr& end, bool local_receives);
/// Reads a channel id and binds a new end for the handler, with the declared credit.
bool read_channel(postcard::reader& r, end_ptr& end, bool local_receives, uint32_t initial_credit);

/// `args` with the channel id written at each of `offsets` (see channel_binder), which
/// must read `from[i]`, replaced by `to[i]`. Nullopt if one does not (the arguments were
/// not encoded as write_channel saw them): the call cannot be rebound.
std::optional<payload> rewrite_channel_ids(const payload& args, const std::vector<uint32_t>& offsets,
                                           const std::vector<channel_id>& from, const std::vector<channel_id>& to);

/// Runs `done(error)` in `self` once `end` has credit (no error) or never will.
template <class Self, class F>
void request_credit(Self* self, const end_ptr& end, F done) {
  if (auto err = end->send_check(); err || end->credit() > 0) {
    done(std::move(err));
    return;
  }
  auto next = std::make_shared<F>(std::move(done));
  self->request(end->binding()->driver, caf::infinite, channel_credit_atom::value, end->request())
    .then([end, next](uint32_t n) { (*next)(end->take_credit(n)); },
          [end, next](caf::error& e) { (*next)(end->take_credit(std::move(e))); });
}

/// Runs `done()` in `self` once `end` holds items, or its channel ended (see failure(),
/// closed()).
template <class Self, class F>
void request_items(Self* self, const end_ptr& end, F done) {
  if (!end->items().empty() || end->closed() || end->failure()) {
    done();
    return;
  }
  if (end->binding() == nullptr) {
    end->abandon(make_error(errc::invalid_request, "the channel end is not bound to a call yet"));
    done();
    return;
  }
  auto next = std::make_shared<F>(std::move(done));
  self->request(end->binding()->driver, caf::infinite, channel_recv_atom::value, end->request())
    .then(
      [end, next](channel_batch& b) {
        end->take_batch(std::move(b));
        (*next)();
      },
      [end, next](caf::error& e) {
        end->take_batch(std::move(e));
        (*next)();
      });
}

/// Sends what `gen` yields until it yields nullopt (then closes) or the channel fails.
template <class T, class Self, class Gen, class Done>
struct send_loop : std::enable_shared_from_this<send_loop<T, Self, Gen, Done>> {
  send_loop(Self* s, end_ptr e, Gen g, Done d) : self(s), end(std::move(e)), gen(std::move(g)), done(std::move(d)) {}
  Self* self;
  end_ptr end;
  Gen gen;
  Done done;

  void run() {
    for (;;) {
      if (auto err = end->send_check()) {
        done(std::move(err));
        return;
      }
      if (end->credit() == 0) {
        request_credit(self, end, [loop = this->shared_from_this()](caf::error err) {
          if (err)
            loop->done(std::move(err));
          else
            loop->run();
        });
        return;
      }
      // As many items as the credit allows go out in one write.
      std::vector<payload> batch;
      bool finished = false;
      while (batch.size() < end->credit()) {
        std::optional<T> value = gen();
        if (!value) {
          finished = true;
          break;
        }
        batch.emplace_back(encode(*value));
      }
      if (!batch.empty()) {
        if (auto err = end->write_items(std::move(batch), self->context())) {
          done(std::move(err));
          return;
        }
      }
      if (finished) {
        end->close({});
        done(caf::error{});
        return;
      }
    }
  }
};

/// Hands every item to `on_item` until the channel ends, then calls `on_end`.
template <class T, class Self, class OnItem, class OnEnd>
struct receive_loop : std::enable_shared_from_this<receive_loop<T, Self, OnItem, OnEnd>> {
  receive_loop(Self* s, end_ptr e, OnItem i, OnEnd d)
    : self(s), end(std::move(e)), on_item(std::move(i)), on_end(std::move(d)) {}
  Self* self;
  end_ptr end;
  OnItem on_item;
  OnEnd on_end;

  void run() {
    auto& items = end->items();
    while (!items.empty() && !end->failure()) {
      auto value = decode<T>(items.front());
      items.pop_front();
      if (!value) {
        end->reset({});
        on_end(std::move(value.error()));
        return;
      }
      on_item(std::move(*value));
    }
    if (end->failure()) {
      on_end(end->failure());
      return;
    }
    if (end->closed()) {
      on_end(caf::error{});
      return;
    }
    request_items(self, end, [loop = this->shared_from_this()] { loop->run(); });
  }
};

} // namespace detail

/// The sending end of a channel of T.
template <class T, uint32_t N = default_channel_credit>
class tx {
public:
  static_assert(N > 0, "a channel needs at least one credit");
  static constexpr const char* direction = "tx";
  static constexpr uint32_t initial_credit = N;
  using element_type = T;

  tx() = default;
  explicit tx(detail::end_ptr end) : end_(std::move(end)) {}

  // -- event-based: call from the actor `self`; callbacks run in `self` --

  /// Sends `value` now if the end holds credit; false otherwise (ask with when_ready).
  bool try_send(const T& value) const {
    return !end_->send_check() && end_->credit() > 0 && !end_->write_item(payload{encode(value)});
  }
  /// Calls `f(caf::error)` in `self` once try_send can succeed (no error), or with the
  /// reason it never will (closed, reset, connection gone).
  template <class Self, class F>
  void when_ready(Self* self, F f) const {
    detail::request_credit(self, end_, std::move(f));
  }
  /// Sends every value `gen()` yields, as credit allows, until it yields nullopt; then
  /// closes the channel and calls `done(caf::error{})`, or `done(reason)` if it failed.
  template <class Self, class Gen, class Done>
  void send_all(Self* self, Gen gen, Done done) const {
    using loop = detail::send_loop<T, Self, Gen, Done>;
    std::make_shared<loop>(self, end_, std::move(gen), std::move(done))->run();
  }

  // -- blocking: from a plain thread --

  /// Waits for credit, then sends `value`.
  caf::expected<void> send(const T& value) const { return send_until(value, std::nullopt); }
  template <class Rep, class Period>
  caf::expected<void> send_for(const T& value, std::chrono::duration<Rep, Period> timeout) const {
    return send_until(value, std::chrono::steady_clock::now() + timeout);
  }

  // -- either --
  void close(vox::metadata md = {}) const { end_->close(std::move(md)); }
  void reset(vox::metadata md = {}) const { end_->reset(std::move(md)); }
  channel_id id() const { return end_->binding() ? end_->binding()->decl.id : 0; }
  const detail::end_ptr& end() const { return end_; }

private:
  caf::expected<void> send_until(const T& value, std::optional<std::chrono::steady_clock::time_point> deadline) const {
    if (auto err = end_->wait_credit(deadline))
      return err;
    if (auto err = end_->write_item(payload{encode(value)}))
      return err;
    return {};
  }
  detail::end_ptr end_;
};

/// The receiving end of a channel of T.
template <class T, uint32_t N = default_channel_credit>
class rx {
public:
  static_assert(N > 0, "a channel needs at least one credit");
  static constexpr const char* direction = "rx";
  static constexpr uint32_t initial_credit = N;
  using element_type = T;

  rx() = default;
  explicit rx(detail::end_ptr end) : end_(std::move(end)) {}

  // -- event-based: call from the actor `self`; callbacks run in `self` --

  /// Calls `on_item(T)` for every item, in order, then `on_end(caf::error)`: no error
  /// after the sender's Close, else why the channel failed (reset, connection gone, an
  /// item that does not decode, which also resets the channel).
  template <class Self, class OnItem, class OnEnd>
  void for_each(Self* self, OnItem on_item, OnEnd on_end) const {
    using loop = detail::receive_loop<T, Self, OnItem, OnEnd>;
    std::make_shared<loop>(self, end_, std::move(on_item), std::move(on_end))->run();
  }
  /// Calls `f(caf::expected<std::optional<T>>)` with the next item (nullopt after Close).
  template <class Self, class F>
  void next(Self* self, F f) const {
    detail::request_items(self, end_, [end = end_, f = std::move(f)]() mutable { f(pop(*end)); });
  }

  // -- blocking: from a plain thread --

  /// The next item, nullopt once the sender closed the channel.
  caf::expected<std::optional<T>> recv() const { return recv_until(std::nullopt); }
  template <class Rep, class Period>
  caf::expected<std::optional<T>> recv_for(std::chrono::duration<Rep, Period> timeout) const {
    return recv_until(std::chrono::steady_clock::now() + timeout);
  }

  // -- either --
  void reset(vox::metadata md = {}) const { end_->reset(std::move(md)); }
  channel_id id() const { return end_->binding() ? end_->binding()->decl.id : 0; }
  const detail::end_ptr& end() const { return end_; }

private:
  caf::expected<std::optional<T>> recv_until(std::optional<std::chrono::steady_clock::time_point> deadline) const {
    if (auto err = end_->wait_items(deadline))
      return err;
    return pop(*end_);
  }
  static caf::expected<std::optional<T>> pop(detail::channel_end& end) {
    // Items that came before a peer's Reset are still delivered; our own reset drops them.
    if (auto err = end.failure(); err && (end.items().empty() || end.reset_requested()))
      return err;
    if (end.items().empty())
      return std::optional<T>{};
    auto value = decode<T>(end.items().front());
    end.items().pop_front();
    if (!value)
      return std::move(value.error());
    return std::optional<T>{std::move(*value)};
  }
  detail::end_ptr end_;
};

/// Two unbound ends of one channel; pass one in a call's arguments, keep the other. N
/// must be the credit the method declares for that argument (the types enforce it).
template <class T, uint32_t N = default_channel_credit>
std::pair<tx<T, N>, rx<T, N>> channel() {
  auto end = std::make_shared<detail::channel_end>(N);
  return {tx<T, N>{end}, rx<T, N>{end}};
}

// Caller passes rx (it keeps tx: it sends); the handler's rx receives.
template <class T, uint32_t N>
struct custom_codec<rx<T, N>> {
  static constexpr size_t min_size = 1;
  static void write(postcard::writer& w, const rx<T, N>& v) { detail::write_channel(w, v.end(), false); }
  static bool read(postcard::reader& r, rx<T, N>& v) {
    detail::end_ptr end;
    if (!detail::read_channel(r, end, true, N))
      return false;
    v = rx<T, N>{std::move(end)};
    return true;
  }
};

// Caller passes tx (it keeps rx: it receives); the handler's tx sends.
template <class T, uint32_t N>
struct custom_codec<tx<T, N>> {
  static constexpr size_t min_size = 1;
  static void write(postcard::writer& w, const tx<T, N>& v) { detail::write_channel(w, v.end(), true); }
  static bool read(postcard::reader& r, tx<T, N>& v) {
    detail::end_ptr end;
    if (!detail::read_channel(r, end, false, N))
      return false;
    v = tx<T, N>{std::move(end)};
    return true;
  }
};

} // namespace vox
