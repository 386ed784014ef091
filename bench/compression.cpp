#include "bench/compression.hpp"

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/scoped_actor.hpp>

#include "actors/session_server.hpp"
#include "apps/testbed/testbed_client.hpp"
#include "bench/raw_tcp.hpp"
#include "bench/workloads.hpp"
#include "transport/tcp_link.hpp"

namespace voxbench {

namespace {

using namespace std::chrono_literals;
namespace tb = vox::testbed;

/// One TCP connection relayed to 127.0.0.1:`upstream`, counting the bytes each way and,
/// when `bytes_per_s` > 0, passing at most that many per second in each direction (a slow
/// link: each chunk leaves once the bytes before it would have crossed at that rate).
class relay {
public:
  /// Null (and `why`) when it cannot listen.
  static std::unique_ptr<relay> start(uint16_t upstream, double bytes_per_s, std::string& why) {
    uint16_t port = 0;
    int fd = raw_listen("127.0.0.1", 0, port, why);
    if (fd < 0)
      return nullptr;
    auto r = std::unique_ptr<relay>{new relay(fd, port, upstream, bytes_per_s)};
    r->acceptor_ = std::thread{[p = r.get()] { p->run(); }};
    return r;
  }

  ~relay() {
    for (int fd : {listen_fd_, down_.load(), up_.load()})
      if (fd >= 0)
        ::shutdown(fd, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : pumps_)
      if (t.joinable())
        t.join();
    for (int fd : {listen_fd_, down_.load(), up_.load()})
      if (fd >= 0)
        ::close(fd);
  }

  uint16_t port() const { return port_; }

  /// Bytes passed so far, both directions.
  uint64_t bytes() const { return bytes_.load(); }

private:
  relay(int fd, uint16_t port, uint16_t upstream, double bytes_per_s)
    : listen_fd_(fd), port_(port), upstream_(upstream), rate_(bytes_per_s) {}

  void run() {
    int down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (down < 0)
      return;
    down_ = down;
    int one = 1;
    ::setsockopt(down, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string why;
    int up = raw_connect("127.0.0.1", upstream_, why);
    if (up < 0) {
      ::shutdown(down, SHUT_RDWR);
      return;
    }
    up_ = up;
    pumps_[0] = std::thread{[this, down, up] { pump(down, up); }};
    pumps_[1] = std::thread{[this, down, up] { pump(up, down); }};
  }

  void pump(int from, int to) {
    char buf[16 * 1024];
    uint64_t passed = 0;
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      auto n = ::read(from, buf, sizeof buf);
      if (n <= 0)
        break;
      // Counted before it is passed on: once a reply reached the caller, it is counted.
      bytes_ += static_cast<uint64_t>(n);
      passed += static_cast<uint64_t>(n);
      if (rate_ > 0) // the simulated link's serialisation delay, not synchronisation
        std::this_thread::sleep_until(start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                std::chrono::duration<double>(static_cast<double>(passed) / rate_)));
      if (!raw_write_all(to, buf, static_cast<size_t>(n)))
        return;
    }
    ::shutdown(to, SHUT_WR);
  }

  int listen_fd_;
  uint16_t port_;
  uint16_t upstream_;
  double rate_;
  std::atomic<int> down_{-1}, up_{-1};
  std::atomic<uint64_t> bytes_{0};
  std::thread acceptor_;
  std::thread pumps_[2];
};

/// A JSON-like text of about `size` bytes: records with the same keys and changing values.
std::string json_like(size_t size) {
  std::string out = "[";
  uint32_t x = 7;
  for (int i = 0; out.size() < size; ++i) {
    x = x * 1103515245u + 12345u;
    char rec[256];
    std::snprintf(rec, sizeof rec,
                  R"({"id":%d,"name":"user-%u","email":"user%u@example.com","active":%s,"score":%u.%02u,)"
                  R"("tags":["alpha","beta"],"region":"eu-west-%u"},)",
                  i, x % 100000, x % 7919, (x & 1) ? "true" : "false", x % 1000, x % 100, x % 4);
    out += rec;
  }
  out.resize(size);
  return out;
}

/// One session through its own relay to `server_port`.
struct relayed_session {
  std::unique_ptr<relay> wire;
  caf::expected<vox::session_handle> session = caf::error{};
};

relayed_session connect_relayed(caf::actor_system& sys, uint16_t server_port, double bytes_per_s,
                                vox::compression_options compression) {
  relayed_session out;
  std::string why;
  out.wire = relay::start(server_port, bytes_per_s, why);
  if (!out.wire) {
    out.session = vox::make_error(vox::errc::io_error, "relay: " + why);
    return out;
  }
  auto lnk = vox::tcp_connect("127.0.0.1", out.wire->port());
  if (!lnk) {
    out.session = std::move(lnk.error());
    return out;
  }
  vox::session_options opts;
  opts.log = [](const std::string&) {};
  opts.compression = compression;
  out.session = vox::connect_session(sys, *lnk, opts);
  return out;
}

/// Wire bytes per call of `calls` calls made by `one(i)` after `warm` uncounted ones;
/// nullopt when a call failed.
template <class Call>
std::optional<double> bytes_per_call(const relay& wire, int warm, int calls, Call one) {
  for (int i = 0; i < warm; ++i)
    if (!one(i))
      return std::nullopt;
  auto before = wire.bytes();
  for (int i = 0; i < calls; ++i)
    if (!one(warm + i))
      return std::nullopt;
  return static_cast<double>(wire.bytes() - before) / calls;
}

row bytes_row(std::string name, std::string transport, const std::optional<double>& v, std::string detail) {
  row r{std::move(name), std::move(transport), "B/call", false, v.has_value(), v.value_or(0), std::move(detail)};
  if (!v)
    r.detail = "FAILED: a call failed";
  return r;
}

/// Appends "; 3.10x fewer bytes than uncompressed" to the compressed row of `pair`
/// (uncompressed row first), with the rows' values as `fewer` (uncompressed / compressed)
/// or as a speed-up (compressed / uncompressed). Nothing unless both rows measured.
void add_ratio(std::vector<row>& pair, bool fewer) {
  if (pair.size() != 2 || !pair[0].ok || !pair[1].ok || pair[0].value <= 0 || pair[1].value <= 0)
    return;
  char buf[96];
  std::snprintf(buf, sizeof buf, "; %.2fx %s than uncompressed",
                fewer ? pair[0].value / pair[1].value : pair[1].value / pair[0].value,
                fewer ? "fewer bytes" : "faster");
  pair[1].detail += buf;
}

} // namespace

std::vector<row> compression_rows(caf::actor_system& sys, int level, double throttle_bytes_per_s, timing t) {
  std::vector<row> rows;
  vox::session_server::config cfg;
  cfg.options = tb::serving_options();
  cfg.options.log = [](const std::string&) {};
  cfg.options.compression.mode = vox::compression_mode::prefer;
  cfg.options.compression.level = level;
  auto srv = vox::session_server::start(sys, cfg);
  if (!srv) {
    rows.push_back(row{"wire bytes", "tcp", "B/call", false, false, 0, "FAILED: " + sys.render(srv.error())});
    return rows;
  }
  vox::compression_options zstd;
  zstd.mode = vox::compression_mode::require;
  zstd.level = level;
  const char* transports[] = {"tcp", "tcp, zstd"};
  auto big = json_like(64 * 1024);
  std::vector<row> mix_rows[2], json_rows, bulk_rows;
  for (int z = 0; z < 2; ++z) {
    auto options = z == 0 ? vox::compression_options{} : zstd;
    {
      auto s = connect_relayed(sys, (*srv)->port(), 0, options);
      if (!s.session) {
        mix_rows[0].push_back(row{"wire bytes, Testbed mix", transports[z], "B/call", false, false, 0,
                                  "FAILED: session setup: " + sys.render(s.session.error())});
        continue;
      }
      caf::scoped_actor self{sys};
      vox::client<tb::service_type> client{vox::caller{s.session->root}};
      // create_canvas and echo_point, alternately: with the Testbed scenarios' arguments,
      // then with every argument changing from call to call.
      for (bool varied : {false, true}) {
        auto mixed = [&](int i) {
          if (i % 2 == 0) {
            std::vector<tb::shape> shapes{tb::shape{tb::point_shape{}}, tb::shape{tb::circle{2.5}}};
            std::string name = "enum-canvas";
            if (varied) {
              shapes = {tb::circle{1.5 + i}, tb::rect_shape{2.0, 3.0 + i}, tb::point_shape{}};
              name = "canvas-" + std::to_string(i);
            }
            auto r = client.call<tb::m::create_canvas>(self, {name, shapes, tb::color::green}, 10s);
            return r && r->is_ok();
          }
          auto r = client.call<tb::m::echo_point>(self, {varied ? tb::point{i, -i} : tb::point{42, -7}}, 10s);
          return r && r->is_ok();
        };
        auto m = bytes_per_call(*s.wire, 100, 2000, mixed);
        mix_rows[varied].push_back(bytes_row(varied ? "wire bytes, Testbed mix, varied args" : "wire bytes, Testbed mix",
                                             transports[z], m,
                                             varied ? "as above, every argument different in every call"
                                                    : "create_canvas, echo_point alternately, the scenarios' "
                                                      "arguments; both directions, 2000 calls"));
      }
      auto echo_big = [&](int) {
        auto r = client.call<tb::m::echo>(self, {big}, 10s);
        return r && r->is_ok() && r->ok().size() == big.size();
      };
      auto j = bytes_per_call(*s.wire, 10, 200, echo_big);
      json_rows.push_back(
        bytes_row("wire bytes, 64 KiB JSON-like echo", transports[z], j, "echo(String), both directions, 200 calls"));
      stop_session(*s.session);
    }
    // Bulk: the same echo through a link throttled in each direction.
    auto s = connect_relayed(sys, (*srv)->port(), throttle_bytes_per_s, options);
    char name[64];
    std::snprintf(name, sizeof name, "64 KiB echo, %.0f MB/s link", throttle_bytes_per_s / 1e6);
    row r{name, transports[z], "MB/s", false, false, 0, {}};
    if (!s.session) {
      r.detail = "FAILED: session setup: " + sys.render(s.session.error());
    } else {
      caf::scoped_actor self{sys};
      vox::client<tb::service_type> client{vox::caller{s.session->root}};
      auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                            std::chrono::duration<double>(t.warmup_s + t.measure_s));
      auto counted_from = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                std::chrono::duration<double>(t.warmup_s));
      uint64_t calls = 0;
      bool ok = true;
      clock_type::time_point first{};
      for (auto now = clock_type::now(); now < deadline; now = clock_type::now()) {
        auto res = client.call<tb::m::echo>(self, {big}, 30s);
        if (!res || !res->is_ok()) {
          ok = false;
          break;
        }
        if (now >= counted_from) {
          if (calls++ == 0)
            first = now;
        }
      }
      double secs = std::chrono::duration<double>(clock_type::now() - first).count();
      if (ok && calls > 0) {
        r.ok = true;
        r.value = static_cast<double>(calls) * 2 * static_cast<double>(big.size()) / secs / 1e6;
        r.detail = std::to_string(calls) + " echoes of " + std::to_string(big.size()) + " B in "
                   + std::to_string(secs).substr(0, 4) + " s (payload both ways)";
      } else {
        r.detail = "FAILED: a call failed";
      }
      stop_session(*s.session);
    }
    bulk_rows.push_back(r);
  }
  for (auto* pair : {&mix_rows[0], &mix_rows[1], &json_rows})
    add_ratio(*pair, true);
  add_ratio(bulk_rows, false);
  (*srv)->stop();
  for (auto* part : {&mix_rows[0], &mix_rows[1], &json_rows, &bulk_rows})
    rows.insert(rows.end(), part->begin(), part->end());
  return rows;
}

} // namespace voxbench
