#include "transport/io_uring_poller.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/utsname.h>

#include "transport/io_reactor.hpp"

namespace vox::detail {

namespace {

constexpr uint16_t buffer_group = 0;
/// The kernel's limit on a provided-buffer ring.
constexpr uint32_t max_buffers = 32768;
constexpr unsigned ring_entries = 256;
constexpr unsigned max_batch = 256;

enum op_kind : uint64_t { op_input = 0, op_output = 1, op_wake = 2, op_ignore = 3 };

uint64_t tag(uint32_t slot, uint32_t gen, op_kind kind) {
  return (static_cast<uint64_t>(gen) << 32) | (static_cast<uint64_t>(slot) << 2) | kind;
}

bool kernel_at_least(int major, int minor) {
  utsname u{};
  if (::uname(&u) != 0)
    return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2)
    return false;
  return ma > major || (ma == major && mi >= minor);
}

} // namespace

struct uring_poller::impl {
  io_uring ring{};
  // Read buffers lent to the kernel, shared by every link of the loop. A completion takes
  // one; it returns to the ring as soon as its handler has seen the bytes.
  io_uring_buf_ring* buffers_ring = nullptr;
  uint8_t* buffers = nullptr;
  uint32_t buffer_count = 0;
  uint32_t buffer_size = 0;

  struct record {
    int fd = -1;
    io_handler* handler = nullptr;
    uint32_t gen = 0;
    bool live = false;
    bool reads = false;
    bool want_in = false;
    bool want_out = false;
    bool in_armed = false;
    bool out_armed = false;
  };
  std::vector<record> records;
  std::vector<uint32_t> free_slots;
  std::unordered_map<io_handler*, uint32_t> slot_of;

  int wake_fd = -1;

  bool ring_made = false;

  ~impl() {
    if (ring_made)
      io_uring_queue_exit(&ring);
    std::free(buffers_ring);
    std::free(buffers);
  }

  io_uring_sqe* sqe() {
    // A full submission queue is handed to the kernel first (and completions reaped, so
    // that a full completion queue cannot refuse it).
    auto* s = io_uring_get_sqe(&ring);
    while (s == nullptr) {
      io_uring_submit_and_get_events(&ring);
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }

  void arm_wake() {
    // A poll, not a read: the loop reads the (non-blocking) eventfd itself, as with epoll.
    auto* s = sqe();
    io_uring_prep_poll_add(s, wake_fd, POLLIN);
    io_uring_sqe_set_data64(s, tag(0, 0, op_wake));
  }

  void arm(uint32_t slot) {
    auto& r = records[slot];
    if (!r.live)
      return;
    if (r.want_in && !r.in_armed) {
      auto* s = sqe();
      if (r.reads) {
        io_uring_prep_recv_multishot(s, r.fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = buffer_group;
      } else {
        io_uring_prep_poll_add(s, r.fd, POLLIN);
      }
      io_uring_sqe_set_data64(s, tag(slot, r.gen, op_input));
      r.in_armed = true;
    }
    if (r.want_out && !r.out_armed) {
      auto* s = sqe();
      io_uring_prep_poll_add(s, r.fd, POLLOUT);
      io_uring_sqe_set_data64(s, tag(slot, r.gen, op_output));
      r.out_armed = true;
    }
  }

  void cancel(uint32_t slot, op_kind kind) {
    auto* s = sqe();
    io_uring_prep_cancel64(s, tag(slot, records[slot].gen, kind), 0);
    io_uring_sqe_set_data64(s, tag(0, 0, op_ignore));
  }

  void give_back(uint16_t id) {
    io_uring_buf_ring_add(buffers_ring, buffers + static_cast<size_t>(id) * buffer_size, buffer_size, id,
                          io_uring_buf_ring_mask(buffer_count), 0);
    io_uring_buf_ring_advance(buffers_ring, 1);
  }

  void dispatch(io_loop& loop, const io_uring_cqe& cqe, bool& woken);
};

std::unique_ptr<uring_poller> uring_poller::make(io_read_buffers buffers) {
  // Multishot receives into provided buffers need 6.0, deferred task running 6.1.
  if (!kernel_at_least(6, 1))
    return nullptr;
  auto p = std::make_unique<impl>();
  io_uring_params params{};
  // Completions are run in the loop's own wait (no interrupts of a busy loop), and only
  // the loop's thread submits.
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(ring_entries, &p->ring, &params) < 0)
    return nullptr; // disabled (e.g. kernel.io_uring_disabled, a seccomp filter)
  p->ring_made = true;
  p->buffer_count = std::bit_ceil(std::clamp<uint32_t>(buffers.count, 1, max_buffers));
  p->buffer_size = std::clamp<uint32_t>(buffers.size, 1, 16 << 20);
  auto ring_bytes = (p->buffer_count * sizeof(io_uring_buf) + 4095) / 4096 * 4096;
  p->buffers_ring = static_cast<io_uring_buf_ring*>(std::aligned_alloc(4096, ring_bytes));
  p->buffers = static_cast<uint8_t*>(std::malloc(static_cast<size_t>(p->buffer_count) * p->buffer_size));
  if (p->buffers_ring == nullptr || p->buffers == nullptr)
    return nullptr;
  io_uring_buf_ring_init(p->buffers_ring);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(p->buffers_ring);
  reg.ring_entries = p->buffer_count;
  reg.bgid = buffer_group;
  if (io_uring_register_buf_ring(&p->ring, &reg, 0) != 0)
    return nullptr;
  for (uint32_t i = 0; i < p->buffer_count; ++i)
    p->give_back(static_cast<uint16_t>(i));
  return std::unique_ptr<uring_poller>{new uring_poller(std::move(p))};
}

uring_poller::uring_poller(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

uring_poller::~uring_poller() = default;

void uring_poller::watch_wakeups(int fd) {
  impl_->wake_fd = fd;
  impl_->arm_wake();
}

void uring_poller::add(int fd, io_handler* handler, bool reads) {
  auto& d = *impl_;
  uint32_t slot;
  if (!d.free_slots.empty()) {
    slot = d.free_slots.back();
    d.free_slots.pop_back();
  } else {
    slot = static_cast<uint32_t>(d.records.size());
    d.records.emplace_back();
  }
  auto& r = d.records[slot];
  auto gen = r.gen + 1;
  r = impl::record{};
  r.fd = fd;
  r.handler = handler;
  r.gen = gen;
  r.live = true;
  r.reads = reads;
  r.want_in = true;
  d.slot_of[handler] = slot;
  d.arm(slot);
}

void uring_poller::set_interest(io_handler* handler, bool input, bool output) {
  auto& d = *impl_;
  auto i = d.slot_of.find(handler);
  if (i == d.slot_of.end())
    return;
  auto& r = d.records[i->second];
  if (r.want_in && !input && r.in_armed)
    d.cancel(i->second, op_input);
  if (r.want_out && !output && r.out_armed)
    d.cancel(i->second, op_output);
  r.want_in = input;
  r.want_out = output;
  d.arm(i->second);
}

void uring_poller::remove(io_handler* handler) {
  auto& d = *impl_;
  auto i = d.slot_of.find(handler);
  if (i == d.slot_of.end())
    return;
  auto slot = i->second;
  d.slot_of.erase(i);
  auto& r = d.records[slot];
  // The ring holds its own reference to the file: cancel what is armed, and let the
  // generation turn away completions that still come for the old owner of the slot.
  if (r.in_armed)
    d.cancel(slot, op_input);
  if (r.out_armed)
    d.cancel(slot, op_output);
  r.live = false;
  r.handler = nullptr;
  ++r.gen;
  d.free_slots.push_back(slot);
}

void uring_poller::impl::dispatch(io_loop& loop, const io_uring_cqe& cqe, bool& woken) {
  auto data = cqe.user_data;
  auto kind = static_cast<op_kind>(data & 3);
  if (kind == op_ignore)
    return;
  if (kind == op_wake) {
    woken = true;
    arm_wake();
    return;
  }
  bool has_buffer = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
  auto buffer_id = static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
  auto slot = static_cast<uint32_t>((data & 0xffffffffu) >> 2);
  auto gen = static_cast<uint32_t>(data >> 32);
  bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  if (slot >= records.size() || records[slot].gen != gen || !records[slot].live) {
    if (has_buffer)
      give_back(buffer_id); // a completion for a removed handler
    return;
  }
  auto& r = records[slot];
  auto* handler = r.handler;
  if (kind == op_output) {
    r.out_armed = false;
    if (cqe.res > 0 && r.want_out) {
      // Input conditions reach a reading handler through its receive.
      auto events = static_cast<uint32_t>(cqe.res) & (r.reads ? EPOLLOUT : ~0u);
      handler->on_event(loop, events | EPOLLOUT);
    }
    if (slot < records.size() && records[slot].gen == gen)
      arm(slot);
    return;
  }
  if (!more)
    r.in_armed = false;
  if (!r.reads) {
    if (cqe.res > 0 && r.want_in)
      handler->on_event(loop, static_cast<uint32_t>(cqe.res));
    else if (cqe.res < 0 && cqe.res != -ECANCELED && r.want_in)
      handler->on_event(loop, EPOLLERR);
  } else if (cqe.res > 0) {
    if (has_buffer) {
      auto* bytes = buffers + static_cast<size_t>(buffer_id) * buffer_size;
      if (r.want_in)
        handler->on_read(loop, io_read{byte_span{bytes, static_cast<size_t>(cqe.res)}, 0});
      give_back(buffer_id);
    }
  } else if (cqe.res == 0) {
    if (r.want_in)
      handler->on_read(loop, io_read{{}, 0});
    return; // end of stream: nothing more to read
  } else if (cqe.res == -ENOBUFS) {
    // Every buffer was taken before this batch handed them back; they are back now.
  } else if (cqe.res != -ECANCELED) {
    if (r.want_in)
      handler->on_read(loop, io_read{{}, -cqe.res});
    return;
  }
  // The handler may have removed itself, or a new one may use the slot now.
  if (slot < records.size() && records[slot].gen == gen)
    arm(slot);
}

int uring_poller::wait(io_loop& loop, int timeout_ms, bool& woken) {
  auto& d = *impl_;
  int rc;
  if (timeout_ms == 0) {
    rc = io_uring_submit_and_get_events(&d.ring);
  } else {
    io_uring_cqe* first = nullptr;
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
    rc = io_uring_submit_and_wait_timeout(&d.ring, &first, 1, timeout_ms < 0 ? nullptr : &ts, nullptr);
  }
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
    return -1;
  // Copied out first: handlers submit (and may flush the submission queue) meanwhile.
  io_uring_cqe batch[max_batch];
  unsigned n = 0;
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&d.ring, head, cqe) {
    if (n == max_batch)
      break;
    batch[n++] = *cqe;
  }
  io_uring_cq_advance(&d.ring, n);
  for (unsigned i = 0; i < n; ++i)
    d.dispatch(loop, batch[i], woken);
  return static_cast<int>(n);
}

} // namespace vox::detail
