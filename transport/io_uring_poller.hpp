// The io_uring backend of an I/O loop: one system call per wait that also reads.
//
// With epoll a loop pays `epoll_wait`, then a `recv` per readable socket. Here every
// socket link that lets the loop read for it (`io_loop::add` with `reads`) has a multishot
// receive in the ring, into buffers the loop lends the kernel (a provided-buffer ring
// shared by all of the loop's links, so an idle link still holds none), and the wait that
// returns also returns the bytes. Other handlers (listeners, TLS links) get a one-shot poll
// per wait, re-armed after each event, which keeps epoll's level-triggered semantics.
//
// A ring has one submitter: every method runs on the loop's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "protocol/bytes.hpp"

namespace vox {

class io_handler;
class io_loop;
struct io_read_buffers;

namespace detail {

class uring_poller {
public:
  /// A poller on this thread, or null when the kernel cannot give one (no io_uring, or one
  /// too old for multishot receives into provided buffers: before Linux 6.1).
  static std::unique_ptr<uring_poller> make(io_read_buffers buffers);

  ~uring_poller();
  uring_poller(const uring_poller&) = delete;
  uring_poller& operator=(const uring_poller&) = delete;

  /// Serves `fd` for `handler`: with `reads`, input reaches `io_handler::on_read`;
  /// otherwise readiness reaches `io_handler::on_event`, as with epoll.
  void add(int fd, io_handler* handler, bool reads);
  void set_interest(io_handler* handler, bool input, bool output);
  void remove(io_handler* handler);

  /// Watches `fd` (the loop's eventfd): `wait` reports when it is readable.
  void watch_wakeups(int fd);

  /// Submits what is pending and waits up to `timeout_ms` (-1: no limit, 0: not at all)
  /// for at least one completion, then dispatches every completion. Returns how many it
  /// dispatched, or -1 if the ring failed. `woken` becomes true if the eventfd fired.
  int wait(io_loop& loop, int timeout_ms, bool& woken);

private:
  struct impl;
  explicit uring_poller(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace detail
} // namespace vox
