#include "transport/io_reactor.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <stdexcept>
#include <string>

#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include "transport/io_uring_poller.hpp"

namespace vox {

namespace {

/// Messages an inline actor may handle before the loop looks at its sockets again.
constexpr size_t inline_throughput = 64;
/// Inline resumptions per loop iteration, for the same reason.
constexpr size_t max_jobs_per_iteration = 256;
constexpr int max_events = 256;

thread_local io_loop* current_loop = nullptr;

/// `VOX_IO_BACKEND=epoll` makes `io_backend::automatic` choose epoll: for an environment
/// where io_uring is set up but misbehaves, without rebuilding the application.
bool epoll_from_environment() {
  auto* v = std::getenv("VOX_IO_BACKEND");
  return v != nullptr && std::strcmp(v, "epoll") == 0;
}
thread_local int reply_depth = 0;

/// What a failed set-up system call (its errno) means for the loop being made.
std::runtime_error loop_error() {
  return std::runtime_error{std::string{"vox: cannot create an I/O loop: "} + std::strerror(errno)};
}

} // namespace

io_loop::reply_scope::reply_scope() noexcept { ++reply_depth; }

io_loop::reply_scope::~reply_scope() { --reply_depth; }

bool io_loop::on_io_thread() noexcept { return current_loop != nullptr; }

bool io_loop::on_loop_thread() const noexcept { return current_loop == this; }

bool io_loop::reads_for_handlers() const noexcept { return reads_; }

void io_handler::on_read(io_loop&, const io_read&) {
  // Only handlers added with `reads` are called here, and those override it.
}

void io_handler::on_stop(io_loop&) {}

io_loop::io_loop(caf::actor_system* sys, inline_filter filter, std::chrono::microseconds busy_poll,
                 io_backend backend, io_read_buffers buffers)
  : caf::execution_unit(sys), filter_(std::move(filter)), busy_poll_(busy_poll), backend_(backend),
    buffers_(buffers) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0)
    throw loop_error();
  scratch_.resize(scratch_size);
}

io_loop::~io_loop() {
  if (thread_.joinable())
    thread_.detach();
  ::close(wake_fd_);
  if (epoll_fd_ >= 0)
    ::close(epoll_fd_);
}

bool io_loop::open_epoll() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0)
    return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr; // the wake-up descriptor
  return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0;
}

void io_loop::start(const std::shared_ptr<io_loop>& self) {
  auto chosen = std::make_shared<std::promise<void>>();
  auto ready = chosen->get_future();
  // The thread runs actors (their last message, their cleanup) and holds links that hold
  // actors, so the system must outlive it: ~actor_system waits for its detached threads,
  // as it does for CAF's own detached actors. Counted before the thread exists, so that a
  // system going away now waits for it too.
  auto* sys = &self->system();
  sys->inc_detached_threads();
  auto body = [self = std::shared_ptr<io_loop>{self}, chosen, sys]() mutable {
    // A ring belongs to the thread that made it (IORING_SETUP_SINGLE_ISSUER).
    if (self->backend_ == io_backend::automatic && epoll_from_environment())
      self->backend_ = io_backend::epoll;
    if (self->backend_ != io_backend::epoll)
      self->uring_ = detail::uring_poller::make(self->buffers_);
    if (self->uring_) {
      self->uring_->watch_wakeups(self->wake_fd_);
      self->reads_ = true;
    }
    if (self->uring_ || self->open_epoll()) {
      chosen->set_value();
      self->run();
    } else {
      chosen->set_exception(std::make_exception_ptr(loop_error()));
    }
    self.reset();
    sys->dec_detached_threads(); // the last touch of anything the system owns
  };
  try {
    self->thread_ = std::thread{std::move(body)};
  } catch (...) {
    sys->dec_detached_threads();
    throw;
  }
  ready.get(); // links ask `reads_for_handlers` as soon as they are added
}

void io_loop::on_loop(std::function<void()> fn) {
  if (on_loop_thread())
    fn();
  else
    post(std::move(fn));
}

void io_loop::stop() {
  stop_.store(true);
  wake();
  if (!thread_.joinable())
    return;
  if (std::this_thread::get_id() == thread_.get_id())
    thread_.detach(); // released on the loop's thread: it ends after this iteration
  else
    thread_.join();
}

bool io_loop::add(int fd, std::shared_ptr<io_handler> handler, bool reads) {
  auto* key = handler.get();
  std::weak_ptr<io_handler> weak = handler;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    handlers_.emplace(key, std::move(handler));
  }
  if (reads_) {
    on_loop([this, fd, key, reads, weak] {
      // Unless removed meanwhile (by the loop, before this ran).
      auto alive = weak.lock();
      bool registered;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        auto i = handlers_.find(key);
        registered = i != handlers_.end() && i->second == alive;
      }
      if (registered)
        uring_->add(fd, key, reads);
    });
    return true;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = key;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0)
    return true;
  std::lock_guard<std::mutex> guard{mtx_};
  handlers_.erase(key);
  return false;
}

void io_loop::set_interest(int fd, io_handler* handler, bool input, bool output) {
  if (reads_) {
    on_loop([this, handler, input, output] { uring_->set_interest(handler, input, output); });
    return;
  }
  epoll_event ev{};
  ev.events = (input ? EPOLLIN : 0u) | (output ? EPOLLOUT : 0u);
  ev.data.ptr = handler;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void io_loop::remove(int fd, io_handler* handler) {
  if (reads_ && !on_loop_thread()) {
    // The ring may still complete for the handler until the loop has cancelled it there,
    // so it stays registered (and alive) until then.
    post([this, fd, handler] { remove(fd, handler); });
    return;
  }
  if (reads_)
    uring_->remove(handler);
  else
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = handlers_.find(handler);
    if (i == handlers_.end())
      return;
    released_.push_back(std::move(i->second));
    handlers_.erase(i);
  }
  // An idle loop would otherwise hold the handler (and its socket) until its next event.
  if (!on_loop_thread())
    wake();
}

void io_loop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    posted_.push_back(std::move(fn));
  }
  wake();
}

void io_loop::post_at(std::chrono::steady_clock::time_point when, std::function<void()> fn) {
  bool earliest;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    earliest = timers_.empty() || when < timers_.top().when;
    timers_.push(timer{when, timer_seq_++, std::move(fn)});
  }
  if (earliest && !on_loop_thread())
    wake(); // the loop may be asleep with a later deadline, or none
}

void io_loop::run_timers() {
  std::vector<std::function<void()>> due;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (timers_.empty())
      return; // the common case: no clock read
    auto now = std::chrono::steady_clock::now();
    while (!timers_.empty() && timers_.top().when <= now) {
      due.push_back(std::move(const_cast<timer&>(timers_.top()).fn));
      timers_.pop();
    }
  }
  for (auto& fn : due)
    fn();
}

int io_loop::wait_timeout() {
  if (!jobs_.empty())
    return 0;
  int timeout = -1;
  if (stall_watches_.load(std::memory_order_relaxed) > 0)
    timeout = static_cast<int>(tick_interval.count());
  std::lock_guard<std::mutex> guard{mtx_};
  if (!timers_.empty()) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(timers_.top().when - std::chrono::steady_clock::now());
    auto ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    timeout = timeout < 0 ? ms : std::min(timeout, ms);
  }
  return timeout;
}

int io_loop::poll(int timeout_ms) {
  if (uring_) {
    bool woken = false;
    auto n = uring_->wait(*this, timeout_ms, woken);
    if (woken)
      on_wakeup();
    return n;
  }
  epoll_event events[max_events];
  auto n = ::epoll_wait(epoll_fd_, events, max_events, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -1;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == nullptr) {
      on_wakeup();
    } else {
      static_cast<io_handler*>(events[i].data.ptr)->on_event(*this, events[i].events);
    }
  }
  return n;
}

int io_loop::wait() {
  auto timeout = wait_timeout();
  if (busy_poll_.count() == 0 || timeout == 0)
    return poll(timeout);
  using clock = std::chrono::steady_clock;
  if (spinning_) {
    // Timers are due in whole milliseconds; a spin of a few microseconds delays none.
    auto until = last_events_ + busy_poll_;
    while (!stop_.load(std::memory_order_relaxed)) {
      auto n = poll(0);
      if (n != 0) {
        if (n > 0)
          last_events_ = clock::now();
        return n;
      }
      if (clock::now() >= until)
        break;
      // A thread this one just woke (a CAF worker running the actor a reply was for)
      // may be waiting for this core: let it run first.
      sched_yield();
    }
    spinning_ = false; // the traffic paused: sleep until it shows it is back
  }
  auto asleep = clock::now();
  auto n = poll(timeout);
  if (n > 0) {
    last_events_ = clock::now();
    // Spin next time only if this sleep was shorter than the window, i.e. traffic comes
    // fast enough that spinning saves wake-ups; sparse traffic never spins.
    spinning_ = last_events_ - asleep < busy_poll_;
  }
  return n;
}

void io_loop::watch_stalls(int delta) {
  // A loop asleep without a timeout must learn that it has something to watch now.
  if (stall_watches_.fetch_add(delta, std::memory_order_relaxed) == 0 && delta > 0 && !on_loop_thread())
    wake();
}

void io_loop::wake() {
  uint64_t one = 1;
  (void) ::write(wake_fd_, &one, sizeof(one));
}

void io_loop::exec_later(caf::resumable* job) {
  // Only jobs woken by something running on this thread may stay here; CAF calls this from
  // an actor's enqueue with the sender's execution unit, which is this loop only while the
  // sender runs on it.
  if (on_loop_thread() && filter_) {
    if (auto mode = filter_(job, reply_depth > 0); mode != inline_run::no) {
      jobs_.push_back({job, mode});
      return;
    }
  }
  system().scheduler().enqueue(job);
}

void io_loop::run_jobs() {
  for (size_t n = 0; n < max_jobs_per_iteration && !jobs_.empty(); ++n) {
    auto [job, mode] = jobs_.front();
    jobs_.pop_front();
    bool stays = mode == inline_run::yes;
    switch (job->resume(this, stays ? inline_throughput : 1)) {
      case caf::resumable::resume_later:
        if (stays)
          jobs_.push_back({job, mode});
        else
          system().scheduler().enqueue(job); // with the reference taken when it was scheduled
        break;
      case caf::resumable::awaiting_message:
      case caf::resumable::done:
      case caf::resumable::shutdown_execution_unit:
        // The reference taken when the job was scheduled.
        intrusive_ptr_release(job);
        break;
    }
  }
}

void io_loop::on_wakeup() {
  uint64_t count = 0;
  (void) ::read(wake_fd_, &count, sizeof(count));
  run_posted();
}

void io_loop::run_posted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    tasks.swap(posted_);
  }
  for (auto& fn : tasks)
    fn();
}

void io_loop::tick_all() {
  std::vector<std::shared_ptr<io_handler>> all;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    all.reserve(handlers_.size());
    for (auto& [key, h] : handlers_)
      all.push_back(h);
  }
  auto now = std::chrono::steady_clock::now();
  for (auto& h : all)
    h->on_tick(*this, now);
}

void io_loop::run() {
  current_loop = this;
  pthread_setname_np(pthread_self(), "vox.io"); // what top, perf and gdb show

  while (!stop_.load()) {
    if (wait() < 0)
      break;
    run_timers();
    run_jobs();
    if (stall_watches_.load(std::memory_order_relaxed) > 0) {
      auto now = std::chrono::steady_clock::now();
      if (now >= next_tick_) {
        next_tick_ = now + tick_interval;
        tick_all();
      }
    }
    {
      std::lock_guard<std::mutex> guard{mtx_};
      graveyard_.swap(released_);
    }
    graveyard_.clear();
  }
  release_all();
}

void io_loop::release_all() {
  // Handlers still registered learn that no event will come: a link ends its input, which
  // lets go of its receiver (and the receiver of it: they may hold each other).
  std::vector<std::shared_ptr<io_handler>> left;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [key, h] : handlers_)
      left.push_back(h);
  }
  for (auto& h : left)
    h->on_stop(*this);
  left.clear();
  // Jobs not run yet (some just woken by those ends) go to the scheduler, so that no actor
  // is stranded on a dead thread.
  for (auto& j : jobs_)
    system().scheduler().enqueue(j.ptr);
  jobs_.clear();
  current_loop = nullptr;
  // Handlers, tasks and timers may hold the last reference to an actor, whose destruction
  // needs the system: they go here, on this thread, before it lets the system go.
  decltype(handlers_) handlers;
  decltype(posted_) posted;
  decltype(timers_) timers;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    handlers.swap(handlers_);
    posted.swap(posted_);
    timers.swap(timers_);
    graveyard_.swap(released_);
  }
  graveyard_.clear();
  handlers.clear();
  posted.clear();
  timers = {};
  uring_.reset();
}

std::shared_ptr<io_reactor> io_reactor::start(caf::actor_system& sys, config cfg) {
  // Owned from the first loop on: should a later one fail, the destructor stops those
  // already running (the system would wait for them forever).
  std::shared_ptr<io_reactor> reactor{new io_reactor};
  for (size_t i = 0; i < std::max<size_t>(cfg.threads, 1); ++i) {
    auto loop = std::make_shared<io_loop>(&sys, cfg.run_inline, cfg.busy_poll, cfg.backend, cfg.read_buffers);
    io_loop::start(loop);
    reactor->loops_.push_back(std::move(loop));
  }
  return reactor;
}

io_reactor::~io_reactor() {
  for (auto& loop : loops_)
    loop->stop();
}

const std::shared_ptr<io_loop>& io_reactor::next_loop() {
  return loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
}

} // namespace vox
