// vox-bench: measures vox sessions against a raw-TCP ping-pong floor in the same run.
//
//   vox-bench [--seconds S] [--threads N]   runs every benchmark, prints one table
//   vox-bench serve                         (internal) the TCP server process
//
// TCP rows talk to a separate server process (this binary, re-executed); memory rows run
// both sessions in this process. The machine is noisy: read the ratio column.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/session_server.hpp"
#include "transport/memory_link.hpp"

using namespace vox;
using clock_type = std::chrono::steady_clock;

namespace {

const payload body(32, 0x5a); // 32-byte payloads everywhere

void echo(incoming_call in, reply_sink sink) {
  payload ret{0x00};
  ret.insert(ret.end(), in.args.begin(), in.args.end());
  sink.reply(std::move(ret));
}

connection_acceptor accept_all() {
  return [](connection_id, const connection_settings& peer, const metadata&)
           -> std::variant<accept_connection, reject_connection> {
    return accept_connection{{opposite(peer.parity), 64}, {}, echo, {}};
  };
}

session_options bench_options() {
  session_options o;
  o.root_handler = echo;
  o.acceptor = accept_all();
  o.log = [](const std::string&) {};
  return o;
}

// -- raw TCP floor: the same u32-LE framing, blocking sockets, TCP_NODELAY --------------

bool read_all(int fd, void* p, size_t n) {
  auto* b = static_cast<uint8_t*>(p);
  while (n > 0) {
    auto r = ::read(fd, b, n);
    if (r <= 0)
      return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_all(int fd, const void* p, size_t n) {
  auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    auto r = ::send(fd, b, n, MSG_NOSIGNAL);
    if (r <= 0)
      return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void raw_echo_server(int listener) {
  for (;;) {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0)
      return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::thread{[fd] {
      uint8_t buf[4 + 64 * 1024];
      for (;;) {
        uint32_t len;
        if (!read_all(fd, &len, 4) || len > sizeof buf - 4 || !read_all(fd, buf + 4, len))
          break;
        std::memcpy(buf, &len, 4);
        if (!write_all(fd, buf, 4 + len))
          break;
      }
      ::close(fd);
    }}.detach();
  }
}

int listen_loopback(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 64) != 0)
    return -1;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// Round trips/s of a blocking raw-TCP ping-pong with 32-byte frames.
double raw_tcp_floor(uint16_t port, double seconds) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return 0;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint8_t frame[4 + 32];
  uint32_t len = 32;
  std::memcpy(frame, &len, 4);
  std::memset(frame + 4, 0x5a, 32);
  uint64_t n = 0;
  auto end = clock_type::now() + std::chrono::duration<double>(seconds);
  auto start = clock_type::now();
  while (clock_type::now() < end) {
    uint8_t back[4 + 32];
    if (!write_all(fd, frame, sizeof frame) || !read_all(fd, back, sizeof back))
      break;
    ++n;
  }
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(fd);
  return n / secs;
}

// -- vox workloads, driven from one event-based actor ------------------------------------

/// Calls with `depth` requests in flight on `c` for `seconds`; returns calls/s.
double calls_per_second(caf::actor_system& sys, const caller& c, int depth, double seconds) {
  std::promise<double> done;
  sys.spawn([&, depth, seconds](caf::event_based_actor* self) {
    auto count = std::make_shared<uint64_t>(0);
    auto inflight = std::make_shared<int>(0);
    auto start = clock_type::now();
    auto end = start + std::chrono::duration<double>(seconds);
    auto fire = std::make_shared<std::function<void()>>();
    *fire = [=, &done] {
      ++*inflight;
      self->request(c.driver(), caf::infinite, call_atom::value, outgoing_call{1, {}, body})
        .then(
          [=, &done](call_response&) {
            --*inflight;
            ++*count;
            if (clock_type::now() < end) {
              (*fire)();
            } else if (*inflight == 0) {
              done.set_value(*count / std::chrono::duration<double>(clock_type::now() - start).count());
              *fire = nullptr; // breaks the self-reference
              self->quit();
            }
          },
          [=, &done](caf::error&) {
            done.set_value(0);
            *fire = nullptr;
            self->quit();
          });
    };
    for (int i = 0; i < depth; ++i)
      (*fire)();
  });
  return done.get_future().get();
}

/// Virtual connections opened and closed per second on `session`.
double open_close_per_second(caf::actor_system& sys, const session_actor& session, double seconds) {
  std::promise<double> done;
  sys.spawn([&, seconds](caf::event_based_actor* self) {
    auto count = std::make_shared<uint64_t>(0);
    auto start = clock_type::now();
    auto end = start + std::chrono::duration<double>(seconds);
    auto step = std::make_shared<std::function<void()>>();
    *step = [=, &done] {
      self->request(session, caf::infinite, caf::open_atom::value, open_request{{parity::odd, 64}, {}, {}})
        .then(
          [=, &done](connection_handle& h) {
            self->request(session, caf::infinite, caf::close_atom::value, h.id, metadata{})
              .then(
                [=, &done](caf::ok_atom) {
                  ++*count;
                  if (clock_type::now() < end) {
                    (*step)();
                  } else {
                    done.set_value(*count / std::chrono::duration<double>(clock_type::now() - start).count());
                    *step = nullptr;
                    self->quit();
                  }
                },
                [=, &done](caf::error&) { done.set_value(0); *step = nullptr; self->quit(); });
          },
          [=, &done](caf::error&) { done.set_value(0); *step = nullptr; self->quit(); });
    };
    (*step)();
  });
  return done.get_future().get();
}

long rss_kb() {
  std::ifstream in{"/proc/self/statm"};
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct row {
  std::string name, transport;
  double value;
  std::string unit;
  bool rate; ///< compare with the floor
};

int serve() {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  session_server::config sc;
  sc.options = bench_options();
  auto srv = session_server::start(sys, sc);
  uint16_t raw_port = 0;
  int raw = listen_loopback(raw_port);
  if (!srv || raw < 0)
    return 1;
  std::thread{[raw] { raw_echo_server(raw); }}.detach();
  std::printf("PORTS %u %u\n", (*srv)->port(), raw_port);
  std::fflush(stdout);
  // The parent closes our stdin when it is done.
  char c;
  while (::read(0, &c, 1) > 0) {
  }
  (*srv)->stop();
  ::shutdown(raw, SHUT_RDWR);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "serve") == 0)
    return serve();
  double seconds = 2.0;
  int threads = 2;
  long poll = -1;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--poll") == 0)
      poll = std::stol(argv[i + 1]);
    if (std::strcmp(argv[i], "--seconds") == 0)
      seconds = std::stod(argv[i + 1]);
    if (std::strcmp(argv[i], "--threads") == 0)
      threads = std::stoi(argv[i + 1]);
  }
  // The server process: our own binary in "serve" mode, talking over two pipes.
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0)
    return 1;
  pid_t child = fork();
  if (child == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    execl("/proc/self/exe", argv[0], "serve", nullptr);
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  FILE* child_out = fdopen(from_child[0], "r");
  unsigned vox_port = 0, raw_port = 0;
  if (std::fscanf(child_out, "PORTS %u %u", &vox_port, &raw_port) != 2) {
    std::fprintf(stderr, "vox-bench: server process did not start\n");
    return 1;
  }

  std::vector<row> rows;
  // Floor: raw TCP round trips with the same framing, separate processes.
  double floor = raw_tcp_floor(static_cast<uint16_t>(raw_port), seconds);
  rows.push_back({"raw ping-pong (floor)", "tcp", floor, "rt/s", true});
  {
    caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", threads);
    if (poll >= 0)
      cfg.set("work-stealing.aggressive-poll-attempts", static_cast<size_t>(poll));
    caf::actor_system sys{cfg};
    auto lnk = tcp_connect("127.0.0.1", static_cast<uint16_t>(vox_port));
    auto tcp = lnk ? connect_session(sys, *lnk, bench_options()) : caf::expected<session_handle>{lnk.error()};
    auto mem_links = make_memory_link_pair();
    std::promise<caf::expected<session_handle>> server_side;
    std::thread acceptor{[&] { server_side.set_value(accept_session(sys, mem_links.second, bench_options())); }};
    auto mem = connect_session(sys, mem_links.first, bench_options());
    acceptor.join();
    auto mem_server = server_side.get_future().get();
    if (!tcp || !mem || !mem_server) {
      std::fprintf(stderr, "vox-bench: session setup failed\n");
      return 1;
    }
    {
      caller tcp_root{tcp->root}, mem_root{mem->root};
      // Call round trips with one call outstanding.
      rows.push_back({"call, 1 outstanding", "memory", calls_per_second(sys, mem_root, 1, seconds), "calls/s", true});
      rows.push_back({"call, 1 outstanding", "tcp", calls_per_second(sys, tcp_root, 1, seconds), "calls/s", true});
      // Calls with 64 in flight on one connection.
      rows.push_back({"call, 64 outstanding", "memory", calls_per_second(sys, mem_root, 64, seconds), "calls/s", true});
      rows.push_back({"call, 64 outstanding", "tcp", calls_per_second(sys, tcp_root, 64, seconds), "calls/s", true});
      // Virtual connection open + close, sequentially.
      rows.push_back({"vconn open+close", "memory", open_close_per_second(sys, mem->actor, seconds), "pairs/s", true});
      rows.push_back({"vconn open+close", "tcp", open_close_per_second(sys, tcp->actor, seconds), "pairs/s", true});
      // Resident memory per idle virtual connection, both sessions in this process.
      caf::scoped_actor self{sys};
      auto before = rss_kb();
      const int n = 10000;
      std::vector<connection_handle> kept;
      kept.reserve(n);
      for (int i = 0; i < n; ++i)
        self->request(mem->actor, caf::infinite, caf::open_atom::value, open_request{{parity::odd, 64}, {}, {}})
          .receive([&](connection_handle& h) { kept.push_back(h); }, [](caf::error&) {});
      auto after = rss_kb();
      rows.push_back({"RSS per idle vconn (both ends)", "memory",
                      kept.size() == n ? double(after - before) * 1024 / n : 0, "bytes", false});
    }
    caf::anon_send(tcp->actor, stop_atom::value);
    caf::anon_send(mem->actor, stop_atom::value);
    caf::anon_send(mem_server->actor, stop_atom::value);
  }
  close(to_child[1]); // the server process exits when its stdin closes
  int status = 0;
  waitpid(child, &status, 0);

  std::printf("%-32s %-8s %14s %-8s %10s\n", "benchmark", "link", "result", "unit", "vs floor");
  for (const auto& r : rows) {
    if (r.rate)
      std::printf("%-32s %-8s %14.0f %-8s %9.3fx\n", r.name.c_str(), r.transport.c_str(), r.value,
                  r.unit.c_str(), floor > 0 ? r.value / floor : 0.0);
    else
      std::printf("%-32s %-8s %14.0f %-8s %10s\n", r.name.c_str(), r.transport.c_str(), r.value,
                  r.unit.c_str(), "-");
  }
  return 0;
}
