// Channels: streams of items inside a call, with credit-based flow control
// (testbed-service.md §1 "Channel directions" and "Initial credit"; wire-format.md §3.2.4).
//
//   auto [tx, rx] = vox::channel<int32_t>();   // two ends of one channel, not yet bound
//   client.call<sum>(self, {rx});              // `rx` travels in the args as its channel id;
//   tx.send(1); tx.send(2); tx.close();        // we keep `tx` and feed the handler
//
// In a method signature, `rx<T>` means the handler receives (the caller sends) and `tx<T>`
// means the handler sends (the caller receives). `rx<T, N>` / `tx<T, N>` declare the
// channel's initial credit N (default 16, the reference's constant); both peers must
// declare the same N, as the credit is not part of the schema. The receiver grants
// max(N/2, 1) each time it has consumed that many items. Ends are bound when the arguments are
// encoded (caller) or decoded (handler): the channel id comes from the connection's
// parity. Every end is thread-safe and blocking: use it from a thread, never from an
// actor's message handler (handlers of methods with channels run on their own thread).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <caf/expected.hpp>

#include "protocol/codec.hpp"
#include "protocol/message.hpp"
#include "transport/bare_conduit.hpp"

namespace vox {

/// Credit a channel starts with (Rust DEFAULT_CHANNEL_CREDIT, TS DEFAULT_INITIAL_CREDIT).
constexpr uint32_t default_channel_credit = 16;

namespace detail {

class channel_registry;

/// The shared state of one channel end, at the payload level. Thread-safe.
class channel_core {
public:
  explicit channel_core(uint32_t initial_credit) : credit_(initial_credit), initial_credit_(initial_credit) {}

  /// Binds the core to `id` on a connection; `local_receives` says which end we hold.
  /// A caller's end becomes `active` only once its Call is on the wire (see activate), so
  /// that no item can overtake the Call that announces the channel.
  void bind(channel_id id, std::shared_ptr<channel_registry> registry, bool local_receives, bool active);
  /// The Call carrying this channel was written: items may follow.
  void activate();
  bool bound() const;
  channel_id id() const;

  // -- the sending end --
  /// Waits until the end is bound to a call and has credit, then writes one ChannelItem
  /// (r[rpc.flow-control.credit.exhaustion]). Fails once the channel is closed,
  /// reset by the peer, or its connection is gone, or when `deadline` passes.
  caf::expected<void> send(payload item, std::optional<std::chrono::steady_clock::time_point> deadline);
  /// Writes ChannelClose (once); later sends fail.
  void close(vox::metadata md = {});

  // -- the receiving end --
  /// The next item; nullopt after the sender's Close (and every item before it); an
  /// error after a Reset or when the connection is gone, or when `deadline` passes.
  caf::expected<std::optional<payload>> recv(std::optional<std::chrono::steady_clock::time_point> deadline);

  /// Writes ChannelReset (once) and stops the channel for both ends.
  void reset(vox::metadata md = {});

  // -- from the driver (inbound ChannelMessages) --
  /// False if the peer sent beyond the credit it was given (a protocol violation).
  [[nodiscard]] bool on_item(payload item);
  void on_close();
  void on_reset();
  void on_grant(uint32_t additional);
  /// The connection is gone: every waiter fails with `reason`.
  void on_connection_closed(caf::error reason);

private:
  bool write(channel_body body);

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  channel_id id_ = 0;
  std::shared_ptr<channel_registry> registry_;
  bool local_receives_ = false;
  bool active_ = false;
  uint64_t credit_;
  uint32_t initial_credit_;
  uint32_t consumed_ = 0;
  std::deque<payload> items_;
  bool closed_ = false;      ///< Close sent (our sending end) or received (our receiving end)
  bool reset_ = false;
  caf::error failure_;       ///< set when the connection is gone
};

/// The channels of one connection: id allocation by the connection's parity and routing
/// of inbound ChannelMessages to their ends. Shared by the driver and every handle.
class channel_registry {
public:
  channel_registry(parity local_parity, std::shared_ptr<bare_conduit> conduit, connection_id conn)
    : next_id_(local_parity == parity::odd ? 1 : 2), conduit_(std::move(conduit)), conn_(conn) {}

  /// A fresh id of our parity (r[rpc.channel.binding]).
  channel_id allocate();
  /// Registers a bound end; false if the id is already in use.
  bool add(channel_id id, std::shared_ptr<channel_core> core);
  void remove(channel_id id);
  std::shared_ptr<channel_core> find(channel_id id);
  /// Fails every channel of the connection and forgets them.
  void close_all(const caf::error& reason);

  bool write(channel_id id, channel_body body);

private:
  std::mutex mtx_;
  uint64_t next_id_;
  std::unordered_map<channel_id, std::shared_ptr<channel_core>> cores_;
  bool closed_ = false;
  std::shared_ptr<bare_conduit> conduit_;
  connection_id conn_;
};

/// Where Tx/Rx values encountered while encoding or decoding arguments are bound: set by
/// the client while it encodes a call and by the dispatcher while it decodes one.
struct channel_binder {
  std::shared_ptr<channel_registry> registry;
  bool failed = false;
  std::vector<std::shared_ptr<channel_core>> bound{}; ///< caller side: activate after the Call
};

channel_binder*& current_binder();

/// Sets the current binder for the lifetime of the scope.
class binder_scope {
public:
  explicit binder_scope(channel_binder& b) : prev_(current_binder()) { current_binder() = &b; }
  ~binder_scope() { current_binder() = prev_; }

private:
  channel_binder* prev_;
};

/// Closes the channel when the last copy of a sending end goes away (Rust drops a Tx the
/// same way).
struct close_on_drop {
  explicit close_on_drop(std::shared_ptr<channel_core> c) : core(std::move(c)) {}
  close_on_drop(const close_on_drop&) = delete; // one per end: a copy would close early
  close_on_drop& operator=(const close_on_drop&) = delete;
  std::shared_ptr<channel_core> core;
  ~close_on_drop() {
    if (core && core->bound())
      core->close();
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
  explicit tx(std::shared_ptr<detail::channel_core> core)
    : core_(std::move(core)), guard_(std::make_shared<detail::close_on_drop>(core_)) {}

  /// Waits for credit, then sends `value`.
  caf::expected<void> send(const T& value) const { return core_->send(payload{encode(value)}, std::nullopt); }
  template <class Rep, class Period>
  caf::expected<void> send_for(const T& value, std::chrono::duration<Rep, Period> timeout) const {
    return core_->send(payload{encode(value)}, std::chrono::steady_clock::now() + timeout);
  }
  void close(vox::metadata md = {}) const { core_->close(std::move(md)); }
  void reset(vox::metadata md = {}) const { core_->reset(std::move(md)); }
  channel_id id() const { return core_->id(); }
  const std::shared_ptr<detail::channel_core>& core() const { return core_; }

private:
  std::shared_ptr<detail::channel_core> core_;
  std::shared_ptr<detail::close_on_drop> guard_;
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
  explicit rx(std::shared_ptr<detail::channel_core> core) : core_(std::move(core)) {}

  /// The next item, nullopt once the sender closed the channel.
  caf::expected<std::optional<T>> recv() const { return decode_item(core_->recv(std::nullopt)); }
  template <class Rep, class Period>
  caf::expected<std::optional<T>> recv_for(std::chrono::duration<Rep, Period> timeout) const {
    return decode_item(core_->recv(std::chrono::steady_clock::now() + timeout));
  }
  void reset(vox::metadata md = {}) const { core_->reset(std::move(md)); }
  channel_id id() const { return core_->id(); }
  const std::shared_ptr<detail::channel_core>& core() const { return core_; }

private:
  static caf::expected<std::optional<T>> decode_item(caf::expected<std::optional<payload>> p) {
    if (!p)
      return std::move(p.error());
    if (!*p)
      return std::optional<T>{};
    auto v = decode<T>(**p);
    if (!v)
      return std::move(v.error());
    return std::optional<T>{std::move(*v)};
  }
  std::shared_ptr<detail::channel_core> core_;
};

/// Two unbound ends of one channel; pass one in a call's arguments, keep the other. N
/// must be the credit the method declares for that argument (the types enforce it).
template <class T, uint32_t N = default_channel_credit>
std::pair<tx<T, N>, rx<T, N>> channel() {
  auto core = std::make_shared<detail::channel_core>(N);
  return {tx<T, N>{core}, rx<T, N>{core}};
}

namespace detail {

/// Binds `core` while encoding (`local_receives` is the end the caller keeps) and writes its
/// id; every Tx/Rx argument is its ChannelId varint on the wire (wire-format.md §3.2.4).
void write_channel(postcard::writer& w, const std::shared_ptr<channel_core>& core, bool local_receives);
/// Reads a channel id and binds a new core for the handler's end, with the declared credit.
bool read_channel(postcard::reader& r, std::shared_ptr<channel_core>& core, bool local_receives,
                  uint32_t initial_credit);

} // namespace detail

// Caller passes rx (it keeps tx: it sends); the handler's rx receives.
template <class T, uint32_t N>
struct custom_codec<rx<T, N>> {
  static constexpr size_t min_size = 1;
  static void write(postcard::writer& w, const rx<T, N>& v) { detail::write_channel(w, v.core(), false); }
  static bool read(postcard::reader& r, rx<T, N>& v) {
    std::shared_ptr<detail::channel_core> core;
    if (!detail::read_channel(r, core, true, N))
      return false;
    v = rx<T, N>{std::move(core)};
    return true;
  }
};

// Caller passes tx (it keeps rx: it receives); the handler's tx sends.
template <class T, uint32_t N>
struct custom_codec<tx<T, N>> {
  static constexpr size_t min_size = 1;
  static void write(postcard::writer& w, const tx<T, N>& v) { detail::write_channel(w, v.core(), true); }
  static bool read(postcard::reader& r, tx<T, N>& v) {
    std::shared_ptr<detail::channel_core> core;
    if (!detail::read_channel(r, core, false, N))
      return false;
    v = tx<T, N>{std::move(core)};
    return true;
  }
};

} // namespace vox
