// Operation ids on the serving side of one connection (session-behaviours.md §2.9): a call
// the peer sends again after a resume, or twice at once, runs its handler once.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include "protocol/message.hpp"
#include "protocol/schema.hpp"

namespace vox {

/// The metadata key a caller puts its operation id under (a U64), when the peer said
/// `supports_retry` in its handshake.
inline constexpr const char* operation_id_key = "vox-operation-id";

/// The operation id `md` carries, if any.
std::optional<uint64_t> operation_id_of(const vox::metadata& md);

/// The metadata key under which a call with channels says what may happen to it after a
/// resume (testbed-service.md §1): U64 1 = not idempotent (it ends Indeterminate), 2 =
/// idempotent (it is sent again and runs again with its channels).
inline constexpr const char* channel_retry_mode_key = "vox-channel-retry-mode";
enum class channel_retry_mode : uint64_t { none = 0, non_idem = 1, idem = 2 };

/// The channel retry mode `md` carries (none if absent or unknown).
channel_retry_mode channel_retry_mode_of(const vox::metadata& md);

namespace detail {

/// One connection's operations, owned by its driver. An operation is *live* while its
/// first call (the owner) runs; calls with the same id that arrive meanwhile wait for the
/// owner's answer. The answer is then *sealed*: a later call with the id gets it again
/// without running anything. Sealed answers are evicted oldest first beyond the limits,
/// so a peer cannot grow the store without bound; a call for an evicted operation gets
/// `Indeterminate` (it may have run; we no longer know its answer).
class operation_store {
public:
  struct limits {
    size_t max_sealed = 1024;               ///< answers kept
    size_t max_sealed_bytes = 4u << 20;     ///< their metadata and payload bytes together
  };

  enum class verdict {
    start,         ///< new: run the handler; `id` owns the operation
    duplicate,     ///< `id` is already the owner or a waiter: nothing to do
    attached,      ///< the operation is live: `id` gets the owner's answer
    replay,        ///< sealed: answer `id` with `sealed(op)`
    indeterminate, ///< known once, answer gone (evicted): answer Indeterminate
    conflict,      ///< the id names an operation of another method: InvalidPayload
  };

  struct outcome {
    method_id_t method = 0;
    vox::metadata metadata;
    payload ret;
    const schema::schema_payload* schemas = nullptr;
  };

  explicit operation_store(limits lim) : limits_(lim) {}

  verdict admit(uint64_t op, request_id id, method_id_t method);
  /// The sealed answer of `op` (valid until the next call that changes the store).
  const outcome* sealed(uint64_t op) const;
  /// The owner `id` answered: seal it and return the waiters to answer the same way.
  /// Nothing (and no change) if `id` owns no live operation.
  std::vector<request_id> seal(request_id id, const outcome& answer);
  /// The owner `id` was cancelled: the operation is forgotten (a later call runs it
  /// again); returns its waiters, which are cancelled too.
  std::vector<request_id> forget(request_id id);
  /// Call `id`, waiting for another call's run, stops waiting (its caller cancelled it).
  /// False if `id` waits for nothing.
  bool detach(request_id id);
  /// A resume ended the owner `id` without an answer. An idempotent operation is
  /// forgotten (a repeat runs it again, r[retry.duplicate.released.idem]); any other is
  /// remembered as released: a repeat gets Indeterminate (r[retry.duplicate.released.non-idem]).
  /// Returns the waiters, which get Indeterminate.
  std::vector<request_id> release(request_id id, bool idempotent);

  size_t live() const { return live_.size(); }
  size_t sealed_count() const { return sealed_.size(); }
  size_t sealed_bytes() const { return bytes_; }

private:
  struct live_op {
    request_id owner = 0;
    method_id_t method = 0;
    std::vector<request_id> waiters;
  };
  std::unordered_map<request_id, uint64_t> op_of_waiter_;
  void evict();
  /// The run of `op` ended: returns its waiters.
  std::vector<request_id> end_live(uint64_t op);

  limits limits_;
  std::unordered_map<uint64_t, live_op> live_;
  std::unordered_map<request_id, uint64_t> op_of_owner_;
  std::unordered_map<uint64_t, outcome> sealed_;
  std::deque<uint64_t> order_; ///< sealed ops, oldest first
  /// Evicted ops (their ids only, 8 bytes each, also bounded): answered Indeterminate.
  std::unordered_map<uint64_t, method_id_t> evicted_;
  std::deque<uint64_t> evicted_order_;
  size_t bytes_ = 0;
};

} // namespace detail
} // namespace vox
