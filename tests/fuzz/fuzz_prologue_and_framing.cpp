// A byte stream into a socket link, written in chunks whose sizes come from the input:
// either the blocking reader (the transport prologue as acceptor, then frames with recv)
// or the event-driven one (frames parsed on an I/O thread as they arrive). Either must
// end, with frames or an error, never crash, hang or allocate past max_frame_size.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

#include "fuzz/fuzz_actor_system.hpp"
#include "transport/io_reactor.hpp"
#include "transport/prologue.hpp"
#include "transport/socket_link.hpp"

namespace {

using namespace vox;

struct end_waiter final : link_receiver {
  std::mutex mtx;
  std::condition_variable cv;
  bool ended = false;
  void on_frame(byte_span, caf::execution_unit*) override {}
  void on_end(caf::error, caf::execution_unit*) override {
    std::lock_guard<std::mutex> guard{mtx};
    ended = true;
    cv.notify_all();
  }
};

/// Never destroyed, like the actor system it runs in.
const io_reactor_ptr& reactor() {
  static auto* io = new io_reactor_ptr{io_reactor::start(fuzz::actor_system(), io_reactor::config{})};
  return *io;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  bool event_driven = data[0] & 1;
  uint32_t lcg = data[1] | 1u;
  byte_span stream{data + 2, size - 2};
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return 0;
  link_options opts;
  opts.max_frame_size = 1 << 16;
  auto lnk = make_socket_link(unique_fd{fds[0]}, "fuzz", opts);
  std::thread writer{[&, fd = fds[1]] {
    size_t pos = 0;
    while (pos < stream.size()) {
      lcg = lcg * 1103515245u + 12345u;
      auto n = std::min<size_t>(stream.size() - pos, 1 + (lcg >> 16) % 97);
      auto w = ::send(fd, stream.data() + pos, n, MSG_NOSIGNAL);
      if (w <= 0)
        break;
      pos += static_cast<size_t>(w);
    }
    ::shutdown(fd, SHUT_WR);
  }};
  if (event_driven) {
    auto waiter = std::make_shared<end_waiter>();
    lnk->start(waiter, reactor());
    std::unique_lock<std::mutex> guard{waiter->mtx};
    if (!waiter->cv.wait_for(guard, std::chrono::seconds{10}, [&] { return waiter->ended; }))
      __builtin_trap(); // the input never ended: a hang
  } else if (accept_transport(*lnk, {conduit_mode::bare, conduit_mode::stable})) {
    for (;;) {
      auto frame = lnk->recv();
      if (!frame || !*frame)
        break;
    }
  }
  lnk->abort();
  writer.join();
  ::close(fds[1]);
  return 0;
}
