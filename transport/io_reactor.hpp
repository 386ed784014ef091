// The event-driven I/O layer: a few I/O threads that serve every socket link of a process.
//
// Each I/O thread (an `io_loop`) waits for all the sockets assigned to it, with io_uring
// where the kernel has it (one system call waits and reads) or epoll, and is also a CAF
// execution unit: an actor that a frame wakes up may run right there, on the
// thread that read the frame, instead of paying a thread wake-up to reach a CAF worker.
// Which actors may do that is the owner's choice (`io_reactor::config::run_inline`); every
// other actor is handed to the CAF scheduler as usual.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

#include <caf/execution_unit.hpp>
#include <caf/fwd.hpp>

#include "protocol/bytes.hpp"

namespace vox {

class io_loop;

namespace detail {
class uring_poller;
}

/// What the loop read for a handler that lets it read (`io_loop::add` with `reads`):
/// `bytes`, valid during the call only; when empty, the end of the stream (`error` 0) or a
/// failed read (`error`, an errno value).
struct io_read {
  byte_span bytes;
  int error = 0;
};

/// How an I/O loop waits for its sockets.
enum class io_backend {
  /// io_uring where the kernel offers it (Linux 6.1 or later, not disabled), else epoll;
  /// epoll too when the environment variable VOX_IO_BACKEND is `epoll`.
  automatic,
  epoll,
  /// io_uring, or epoll when the kernel cannot give it (as `automatic`); for tests and
  /// benchmarks that compare the two.
  io_uring,
};

/// The buffers an io_uring loop lends the kernel to read into, shared by all its links
/// (an idle link holds none). A link whose bytes arrive faster than the loop hands
/// buffers back waits for the next wait. `count` is rounded up to a power of two.
struct io_read_buffers {
  uint32_t count = 16;
  uint32_t size = 64 * 1024;
};

/// What an I/O thread does for one registered file descriptor. Every call happens on the
/// loop's thread, never two at a time for one handler.
class io_handler {
public:
  virtual ~io_handler() = default;
  /// `events` holds the EPOLL* bits that fired (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP).
  virtual void on_event(io_loop& loop, uint32_t events) = 0;
  /// Periodic check while the loop has stall watches (see `io_loop::watch_stalls`).
  virtual void on_tick(io_loop& loop, std::chrono::steady_clock::time_point now) = 0;
  /// Input the loop read itself, for a handler added with `reads` on a loop that
  /// `reads_for_handlers`; such a handler's `on_event` then only reports EPOLLOUT.
  virtual void on_read(io_loop& loop, const io_read& input);
  /// The loop stops (its reactor was let go) with this handler still registered: end
  /// whatever waits for it (a link ends its input), since no event will come any more.
  virtual void on_stop(io_loop& loop);
};

/// How an I/O thread runs an actor that code running on it woke.
enum class inline_run {
  /// Not here: the actor goes to the CAF scheduler.
  no,
  /// Here, for the one message that woke it; anything else in its mailbox then goes to
  /// the CAF scheduler.
  one_message,
  /// Here, for as long as it has messages (in turns, between the loop's socket events).
  yes,
};

/// One I/O thread: a set of watched sockets, a run queue of actors it executes inline, and tasks
/// posted from other threads.
class io_loop final : public caf::execution_unit {
public:
  /// Decides `inline_run` for an actor woken on the loop; `reply` is true while that
  /// happens inside a `reply_scope`.
  using inline_filter = std::function<inline_run(caf::resumable* job, bool reply)>;

  /// Marks, on the current thread, that what is enqueued now is the reply to a call,
  /// so that the loop's filter can run the caller's continuation where the reply was read.
  class reply_scope {
  public:
    reply_scope() noexcept;
    ~reply_scope();
    reply_scope(const reply_scope&) = delete;
    reply_scope& operator=(const reply_scope&) = delete;
  };

  /// True on any I/O thread of any loop: a blocking wait there would stop the loop that
  /// has to deliver what it waits for.
  static bool on_io_thread() noexcept;

  /// `busy_poll`: see `io_reactor::config::busy_poll`.
  io_loop(caf::actor_system* sys, inline_filter filter,
          std::chrono::microseconds busy_poll = std::chrono::microseconds{0},
          io_backend backend = io_backend::automatic, io_read_buffers buffers = {});
  ~io_loop() override;

  io_loop(const io_loop&) = delete;
  io_loop& operator=(const io_loop&) = delete;

  /// Starts the thread, and returns once it has chosen its backend (std::runtime_error if
  /// it has none). `self` keeps the loop alive until the thread has exited.
  static void start(const std::shared_ptr<io_loop>& self);

  /// True when the loop can read for its handlers (`add` with `reads`): the io_uring
  /// backend, where the wait that returns has read the bytes already.
  bool reads_for_handlers() const noexcept;

  /// Asks the thread to finish its current iteration and exit. Joins it, unless called on
  /// the loop's own thread (then the thread exits by itself right after).
  void stop();

  /// Registers `fd` for input (level-triggered). The loop keeps `handler` alive until
  /// `remove` (from any thread). With `reads` and a loop that `reads_for_handlers`, input
  /// reaches `on_read` instead of `on_event`. Any thread; with io_uring, a call from
  /// another thread takes effect on the loop's thread, in order with the other calls.
  bool add(int fd, std::shared_ptr<io_handler> handler, bool reads = false);

  /// Sets which of EPOLLIN and EPOLLOUT `fd` waits for. Any thread.
  void set_interest(int fd, io_handler* handler, bool input, bool output);

  /// Deregisters `fd`; `handler` is released after the current batch of events, so a
  /// handler may remove itself. Any thread.
  void remove(int fd, io_handler* handler);

  /// While the count is positive the loop calls `on_tick` of every handler about every
  /// `tick_interval`; handlers with pending output raise it, so an idle loop never wakes.
  void watch_stalls(int delta);

  static constexpr std::chrono::milliseconds tick_interval{100};

  /// Runs `fn` on the loop's thread.
  void post(std::function<void()> fn);

  /// Runs `fn` on the loop's thread once `when` has passed (e.g. a handshake deadline).
  void post_at(std::chrono::steady_clock::time_point when, std::function<void()> fn);

  /// True on this loop's own thread.
  bool on_loop_thread() const noexcept;

  /// Read buffer shared by every link of this loop: a link keeps only the bytes of a frame
  /// that is not complete yet, so an idle link holds no read buffer at all.
  byte_buffer& scratch() { return scratch_; }
  static constexpr size_t scratch_size = 64 * 1024;

  // caf::execution_unit
  void exec_later(caf::resumable* job) override;

private:
  void run();
  void release_all();
  void run_jobs();
  void run_posted();
  void on_wakeup();
  bool open_epoll();
  void run_timers();
  int wait_timeout();
  int wait();
  int poll(int timeout_ms);
  void tick_all();
  void wake();
  /// Runs `fn` now on the loop's thread, or posts it from any other.
  void on_loop(std::function<void()> fn);

  int epoll_fd_ = -1; // only where no ring could be made
  int wake_fd_ = -1;
  inline_filter filter_;
  std::chrono::microseconds busy_poll_;
  io_backend backend_;
  io_read_buffers buffers_;
  std::unique_ptr<detail::uring_poller> uring_; // made, used and destroyed by the loop's thread
  bool reads_ = false; // uring_ was made; written by the thread before `start` returns
  std::chrono::steady_clock::time_point last_events_{}; // loop thread only
  bool spinning_ = false;                                // loop thread only
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> stall_watches_{0};
  std::chrono::steady_clock::time_point next_tick_{};

  struct job {
    caf::resumable* ptr;
    inline_run mode;
  };
  // Loop thread only.
  std::deque<job> jobs_;
  std::vector<std::shared_ptr<io_handler>> graveyard_;
  byte_buffer scratch_;

  std::mutex mtx_; // guards handlers_, graveyard_ hand-over and posted_
  std::unordered_map<io_handler*, std::shared_ptr<io_handler>> handlers_;
  std::vector<std::shared_ptr<io_handler>> released_;
  std::vector<std::function<void()>> posted_;
  struct timer {
    std::chrono::steady_clock::time_point when;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const timer& other) const { return when != other.when ? when > other.when : seq > other.seq; }
  };
  std::priority_queue<timer, std::vector<timer>, std::greater<>> timers_; // under mtx_
  uint64_t timer_seq_ = 0;
};

/// A set of I/O threads; links are spread over them round-robin.
class io_reactor {
public:
  struct config {
    /// Number of I/O threads; 1 by default. The count never depends on the number of links.
    size_t threads = 1;
    /// Which actors woken on an I/O thread run there (the rest go to the CAF scheduler);
    /// none when empty.
    io_loop::inline_filter run_inline;
    /// After handling events, keep polling (`epoll_wait` with a zero timeout, yielding the
    /// core in between) for this long before sleeping, but only while the loop's last
    /// sleep was shorter than this: sparse traffic never spins. 0 (the default) sleeps at
    /// once. A reply that arrives within the window is read without a thread wake-up,
    /// which on a VM is the largest cost of a round trip (the sender pays for waking a
    /// halted vCPU, the receiver waits for it); the price is a core kept busy while
    /// traffic is dense.
    std::chrono::microseconds busy_poll{0};
    /// How the threads wait for their sockets; io_uring where available by default.
    io_backend backend = io_backend::automatic;
    /// With io_uring: what each thread lends the kernel to read into (1 MiB by default).
    io_read_buffers read_buffers;
  };

  /// Starts a reactor whose threads belong to `sys`. They count as the system's detached
  /// threads: `~actor_system` waits until the reactor is released (by the last session or
  /// link that uses it, and by its owner), as it waits for detached actors. So release a
  /// reactor before the system it was started for, never after.
  static std::shared_ptr<io_reactor> start(caf::actor_system& sys, config cfg);

  ~io_reactor();

  io_reactor(const io_reactor&) = delete;
  io_reactor& operator=(const io_reactor&) = delete;

  /// The loop for the next link.
  const std::shared_ptr<io_loop>& next_loop();

  size_t threads() const { return loops_.size(); }

private:
  io_reactor() = default;

  std::vector<std::shared_ptr<io_loop>> loops_;
  std::atomic<size_t> next_{0};
};

using io_reactor_ptr = std::shared_ptr<io_reactor>;

} // namespace vox
