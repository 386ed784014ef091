// vox-soak: rounds of concurrent sessions against a running Testbed server, with the
// server's resident memory, threads and open descriptors sampled after every round.
//
//   vox-soak --connect HOST:PORT --pid PID [--rounds N] [--sessions N] [--workers N]
//            [--settle-ms MS] [--grace-ms MS] [--tolerance-pct P]
//
// Each round opens --sessions sessions (all open at once), then on each: an echo call on
// the root, and by its index one of: a virtual connection opened, called and closed; a
// generate stream drained; a sum stream sent; a long generate cancelled after a few
// items. Then every tenth session drops its socket without a goodbye and the rest close.
// After the round, once the server's descriptors are back to where they started (at most
// --settle-ms) and then --grace-ms more (the server's resume grace, after which the
// sessions dropped without a goodbye have ended too), it prints
//   round R: rss KiB threads N fds N sessions N failures N seconds S
// vox-soak exits 1 if any session failed, or if any later round ends with RSS, threads or
// descriptors more than --tolerance-pct (default 10) above those after the first round.
// `scripts/soak.sh` starts a server and runs it.
#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/service.hpp"
#include "actors/session_actor.hpp"
#include "apps/cli.hpp"
#include "apps/testbed/testbed_types.hpp"
#include "transport/tcp_link.hpp"

using namespace vox;
namespace m = vox::testbed::m;

namespace {

constexpr auto call_bound = std::chrono::seconds{30};

struct server_sample {
  long rss_kib = -1;
  long threads = -1;
  long fds = -1;
};

server_sample sample(int pid) {
  server_sample s;
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:")
      in >> s.rss_kib;
    else if (key == "Threads:")
      in >> s.threads;
  }
  std::error_code ec;
  s.fds = 0;
  for (std::filesystem::directory_iterator i{"/proc/" + std::to_string(pid) + "/fd", ec}, end; !ec && i != end;
       i.increment(ec))
    ++s.fds;
  return s;
}

/// One session of a round: its link (to drop it), its handle, and the root caller that
/// keeps it open (a session whose root callers are all gone closes).
struct soak_session {
  link_ptr link;
  session_handle handle;
  caller root;
};

class round_runner {
public:
  round_runner(caf::actor_system& sys, std::string host, uint16_t port) : sys_(sys), host_(std::move(host)), port_(port) {}

  /// Runs one round of `n` sessions on `workers` threads; returns the number of failures.
  int run(size_t n, size_t workers) {
    failures_ = 0;
    std::vector<soak_session> sessions(n);
    auto t0 = std::chrono::steady_clock::now();
    parallel(n, workers, [&](caf::scoped_actor& self, size_t i) { open(self, sessions[i]); });
    auto t1 = std::chrono::steady_clock::now();
    parallel(n, workers, [&](caf::scoped_actor& self, size_t i) {
      if (sessions[i].handle.actor)
        exercise(self, sessions[i], i);
    });
    auto t2 = std::chrono::steady_clock::now();
    parallel(n, workers, [&](caf::scoped_actor& self, size_t i) { finish(self, sessions[i], i); });
    auto t3 = std::chrono::steady_clock::now();
    using secs = std::chrono::duration<double>;
    phases_ = {secs(t1 - t0).count(), secs(t2 - t1).count(), secs(t3 - t2).count()};
    return failures_;
  }

  /// Seconds spent opening, exercising and ending the last round's sessions.
  std::array<double, 3> phases() const { return phases_; }

  std::string first_failure() {
    std::lock_guard<std::mutex> guard{mtx_};
    return first_;
  }

private:
  template <class F>
  void parallel(size_t n, size_t workers, F fn) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    for (size_t w = 0; w < std::min(n, workers); ++w)
      threads.emplace_back([&] {
        caf::scoped_actor self{sys_};
        for (size_t i; (i = next++) < n;)
          fn(self, i);
      });
    for (auto& t : threads)
      t.join();
  }

  void fail(std::string why) {
    if (failures_++ == 0) {
      std::lock_guard<std::mutex> guard{mtx_};
      first_ = std::move(why);
    }
  }

  void open(caf::scoped_actor& self, soak_session& s) {
    auto lnk = tcp_connect(host_, port_);
    if (!lnk)
      return fail("connect: " + describe(lnk.error()));
    session_options opts;
    opts.log = [](const std::string&) {};
    auto h = connect_session(sys_, *lnk, opts);
    if (!h)
      return fail("handshake: " + describe(h.error()));
    s.link = *lnk;
    s.handle = *h;
    s.root = caller{s.handle.root};
    client<testbed::service_type> tb{s.root};
    auto r = tb.call<m::echo>(self, {"soak"}, call_bound);
    if (!r || !r->is_ok() || r->ok() != "soak")
      fail("echo: " + (r ? std::string{"wrong answer"} : describe(r.error())));
  }

  void exercise(caf::scoped_actor& self, soak_session& s, size_t i) {
    client<testbed::service_type> root{s.root};
    switch (i % 4) {
      case 0: { // a virtual connection: open, call, close
        caf::expected<connection_handle> conn = caf::error{};
        self->request(s.handle.actor, call_bound, caf::open_atom::value, open_request{{parity::odd, 64}, {}, {}})
          .receive([&](connection_handle& c) { conn = std::move(c); }, [&](caf::error& e) { conn = std::move(e); });
        if (!conn)
          return fail("open: " + describe(conn.error()));
        client<testbed::service_type> tb{caller{*conn}}; // the connection lives while a caller does
        auto r = tb.call<m::echo>(self, {"vconn"}, call_bound);
        if (!r || !r->is_ok())
          fail("echo on a virtual connection: " + (r ? std::string{"error"} : describe(r.error())));
        self->request(s.handle.actor, call_bound, caf::close_atom::value, conn->id, metadata{})
          .receive([](caf::ok_atom) {}, [&](caf::error& e) { fail("close: " + describe(e)); });
        return;
      }
      case 1: { // a stream the server sends, within the initial credit so that the call can
        // block (a sender out of credit waits for it before it finds the stream's end)
        auto [out, in] = channel<int32_t>();
        auto r = root.call<m::generate>(self, {8, out}, call_bound);
        if (!r || !r->is_ok())
          return fail("generate: " + (r ? std::string{"error"} : describe(r.error())));
        for (int32_t k = 0; k < 8; ++k) {
          auto item = in.recv_for(call_bound);
          if (!item || !*item || **item != k)
            return fail("generate: item " + std::to_string(k) + " missing or wrong");
        }
        return;
      }
      case 2: { // a stream we send
        auto [out, in] = channel<int32_t>();
        auto sender = std::async(std::launch::async, [out = out] {
          for (int32_t k = 1; k <= 16; ++k)
            if (!out.send_for(k, call_bound)) // waits for the call to carry the end
              return false;
          out.close();
          return true;
        });
        auto r = root.call<m::sum>(self, {in}, call_bound);
        if (!sender.get())
          fail("sum: an item could not be sent");
        if (!r || !r->is_ok() || r->ok() != 136)
          fail("sum: " + (r ? std::string{"wrong answer"} : describe(r.error())));
        return;
      }
      default: { // a long stream, cancelled after a few items
        auto [out, in] = channel<int32_t>();
        call_options opts;
        opts.cancel_tag = new_cancel_tag();
        auto call = std::async(std::launch::async, [&, out = out, tag = opts.cancel_tag] {
          caf::scoped_actor inner{sys_};
          call_options o;
          o.cancel_tag = tag;
          return root.call<m::generate>(inner, {1000000, out}, call_bound, std::move(o));
        });
        for (int k = 0; k < 4; ++k)
          if (auto item = in.recv_for(call_bound); !item || !*item)
            break;
        root.cancel(opts.cancel_tag);
        auto r = call.get();
        if (r && r->is_ok())
          fail("a cancelled generate of 1,000,000 items completed");
        return;
      }
    }
  }

  void finish(caf::scoped_actor& self, soak_session& s, size_t i) {
    if (!s.handle.actor)
      return;
    self->monitor(s.handle.actor);
    if (i % 10 == 9)
      s.link->abort(); // no goodbye: the server sees a reset
    else
      caf::anon_send(s.handle.actor, stop_atom::value);
    bool down = false;
    self->receive([&](caf::down_msg&) { down = true; }, caf::after(call_bound) >> [] {});
    if (!down)
      fail("a session did not end");
    s = {};
  }

  caf::actor_system& sys_;
  std::string host_;
  uint16_t port_;
  std::atomic<int> failures_{0};
  std::array<double, 3> phases_{};
  std::mutex mtx_;
  std::string first_;
};

const char* const usage_text =
  "usage: vox-soak --connect HOST:PORT --pid PID [--rounds N] [--sessions N] [--workers N]\n"
  "                [--settle-ms MS] [--grace-ms MS] [--tolerance-pct P]\n";

} // namespace

int main(int argc, char** argv) {
  std::string host;
  uint16_t port = 0;
  int pid = 0;
  int rounds = 10;
  size_t sessions = 500;
  size_t workers = 16;
  uint32_t settle = 10000;
  uint32_t grace = 0;
  long tolerance = 10;
  cli::options opts{"vox-soak", usage_text};
  opts.address("--connect", host, port)
    .required("--connect")
    .number("--pid", pid, 1, 1 << 30)
    .required("--pid")
    .number("--rounds", rounds, 1, 1 << 20)
    .number<size_t>("--sessions", sessions, 1, 100000)
    .number<size_t>("--workers", workers, 1, 1024)
    .number<uint32_t>("--settle-ms", settle, 0, 3600000)
    .number<uint32_t>("--grace-ms", grace, 0, 3600000)
    .number("--tolerance-pct", tolerance, 0L, 1000L);
  if (auto status = opts.parse(argc, argv))
    return *status;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  round_runner runner{sys, host, port};
  auto before = sample(pid);
  if (before.rss_kib < 0) {
    std::fprintf(stderr, "vox-soak: cannot read /proc/%d\n", pid);
    return 2;
  }
  std::printf("start: rss %ld KiB threads %ld fds %ld\n", before.rss_kib, before.threads, before.fds);
  server_sample baseline;
  bool grew = false;
  int failed = 0;
  for (int r = 1; r <= rounds; ++r) {
    auto start = std::chrono::steady_clock::now();
    int failures = runner.run(sessions, workers);
    failed += failures;
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Sessions end on the server a little after ours: wait (bounded) for its descriptors.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds{settle};
    auto now = sample(pid);
    while (now.fds > before.fds && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{50}); // polling another process
      now = sample(pid);
    }
    if (grace > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds{grace}); // the server's own timer
      now = sample(pid);
    }
    auto ph = runner.phases();
    std::printf("round %d: rss %ld KiB threads %ld fds %ld sessions %zu failures %d seconds %.2f (open %.2f, "
                "calls %.2f, end %.2f)\n",
                r, now.rss_kib, now.threads, now.fds, sessions, failures, secs, ph[0], ph[1], ph[2]);
    if (failures > 0)
      std::printf("  first failure: %s\n", runner.first_failure().c_str());
    std::fflush(stdout);
    if (r == 1) {
      baseline = now;
      continue;
    }
    auto above = [&](long v, long base) { return v * 100 > base * (100 + tolerance); };
    if (above(now.rss_kib, baseline.rss_kib) || above(now.threads, baseline.threads)
        || above(now.fds, baseline.fds)) {
      std::printf("  more than %ld %% above round 1 (rss %ld KiB, threads %ld, fds %ld)\n", tolerance,
                  baseline.rss_kib, baseline.threads, baseline.fds);
      grew = true;
    }
  }
  std::printf("%s\n", failed == 0 && !grew ? "SOAK OK" : "SOAK FAILED");
  return failed == 0 && !grew ? 0 : 1;
}
