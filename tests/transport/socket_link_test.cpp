// Stream links over TCP (127.0.0.1, ephemeral ports) and Unix-domain sockets.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>
#include <vector>

#include <sys/un.h>

#include "support/transport_helpers.hpp"
#include "transport/framing.hpp"
#include "transport/tcp_link.hpp"
#include "transport/unix_link.hpp"

using namespace vox;
using vox::test::peer_thread;
using vox::test::raw_connect;
using vox::test::raw_listener;
using vox::test::read_exactly;
using vox::test::reads_eof;
using vox::test::temp_dir;
using vox::test::watchdog;
using vox::test::write_all;

namespace {

using recv_result = caf::expected<std::optional<byte_buffer>>;

/// A connected pair: {client, server}. `server_options` apply to the accepted side.
std::pair<link_ptr, link_ptr> tcp_pair(link_options server_options = {}) {
  auto listener = tcp_listener::bind("127.0.0.1", 0, server_options);
  REQUIRE(listener);
  // connect completes against the backlog, so no thread is needed for accept.
  auto client = tcp_connect("127.0.0.1", (*listener)->port());
  REQUIRE(client);
  auto server = (*listener)->accept();
  REQUIRE(server);
  return {*client, *server};
}

/// A vox link accepted from a raw TCP peer: {raw fd, link}.
std::pair<unique_fd, link_ptr> raw_peer_and_link(link_options options = {}) {
  auto listener = tcp_listener::bind("127.0.0.1", 0, options);
  REQUIRE(listener);
  auto raw = raw_connect((*listener)->port());
  REQUIRE(raw);
  auto lnk = (*listener)->accept();
  REQUIRE(lnk);
  return {std::move(raw), *lnk};
}

byte_buffer numbered(size_t i) {
  // Mostly small frames, with a few large ones that span many reads.
  size_t size = i % 100 == 99 ? 200 * 1024 + i : (i * 37) % 5000;
  byte_buffer out(size);
  for (size_t k = 0; k < size; ++k)
    out[k] = static_cast<uint8_t>(i * 13 + k);
  return out;
}

byte_buffer framed(uint32_t len, byte_span body) {
  byte_buffer out;
  append_frame_header(out, len);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

} // namespace

// r[verify transport.stream]
TEST_CASE("tcp links deliver a thousand payloads of varied sizes in order", "[transport][tcp]") {
  auto [client, server] = tcp_pair();
  watchdog dog{server};
  std::vector<caf::error> send_errors;
  peer_thread sender{[&client = client] { client->abort(); }, [&] {
                       for (size_t i = 0; i < 1000; ++i)
                         if (auto sent = client->send(numbered(i)); !sent)
                           send_errors.push_back(sent.error());
                       client->close();
                     }};
  size_t received = 0;
  for (;;) {
    auto got = server->recv();
    REQUIRE(got);
    if (!*got)
      break;
    REQUIRE(received < 1000);
    REQUIRE(**got == numbered(received));
    ++received;
  }
  sender.join();
  CHECK(send_errors.empty());
  CHECK(received == 1000);
}

// r[verify link.message.empty]
TEST_CASE("tcp links deliver empty payloads", "[transport][tcp]") {
  auto [client, server] = tcp_pair();
  watchdog dog{server};
  REQUIRE(client->send({}));
  REQUIRE(client->send(byte_buffer{42}));
  REQUIRE(client->send({}));
  client->close();
  for (auto expected : {byte_buffer{}, byte_buffer{42}, byte_buffer{}}) {
    auto got = server->recv();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == expected);
  }
  auto eof = server->recv();
  REQUIRE(eof);
  CHECK_FALSE(*eof);
}

TEST_CASE("tcp links put exactly one length prefix before each payload on the wire",
          "[transport][tcp]") {
  auto [raw, lnk] = raw_peer_and_link();
  REQUIRE(lnk->send(byte_buffer{0xde, 0xad}));
  REQUIRE(lnk->send({}));
  CHECK(to_hex(read_exactly(raw.get(), 10)) == "02000000dead00000000");
}

TEST_CASE("tcp links accept a frame at the configured limit and reject one byte more",
          "[transport][tcp]") {
  link_options small;
  small.max_frame_size = 64 * 1024;
  auto [client, server] = tcp_pair(small);
  watchdog dog{server};
  std::optional<caf::expected<void>> first_sent;
  // In a thread: the second frame may not fit the socket buffers once the reader stops.
  peer_thread sender{[&client = client] { client->abort(); }, [&] {
                       first_sent.emplace(client->send(byte_buffer(small.max_frame_size, 0x5a)));
                       [[maybe_unused]] auto ignored
                         = client->send(byte_buffer(small.max_frame_size + 1, 0x5b));
                     }};
  auto at_limit = server->recv();
  REQUIRE(at_limit);
  REQUIRE(*at_limit);
  CHECK(**at_limit == byte_buffer(small.max_frame_size, 0x5a));
  auto over = server->recv();
  REQUIRE_FALSE(over);
  CHECK(is(over.error(), errc::frame_too_large));
  CHECK(describe(over.error())
        == "frame_too_large: frame of 65537 bytes exceeds the 65536-byte limit");
  // The stream is out of step now; the link must stay failed rather than parse payload.
  auto again = server->recv();
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::frame_too_large));
  // The second send may be stuck on a full window that nobody drains any more.
  client->abort();
  sender.join();
  REQUIRE(first_sent);
  CHECK(*first_sent);
}

TEST_CASE("tcp links reject an oversized length prefix without waiting for its body",
          "[transport][tcp]") {
  auto [raw, lnk] = raw_peer_and_link();
  // Only the header: a link that allocated or read the body first would block here until
  // the watchdog ends the raw peer, and then report the stream cut short instead.
  watchdog dog{[fd = raw.get()] { ::shutdown(fd, SHUT_RDWR); }};
  REQUIRE(write_all(raw.get(), byte_buffer{0xff, 0xff, 0xff, 0xff}));
  auto got = lnk->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::frame_too_large));
  CHECK(describe(got.error())
        == "frame_too_large: frame of 4294967295 bytes exceeds the 16777216-byte limit");
}

TEST_CASE("tcp links report a peer that closes mid-payload", "[transport][tcp]") {
  auto [raw, lnk] = raw_peer_and_link();
  watchdog dog{lnk};
  byte_buffer ten(10, 0x11);
  REQUIRE(write_all(raw.get(), framed(100, ten)));
  raw.reset();
  auto got = lnk->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::link_closed));
  CHECK(describe(got.error()).find("peer closed mid-frame after 10 of 100 payload bytes")
        != std::string::npos);
}

TEST_CASE("tcp links report a peer that closes mid-header", "[transport][tcp]") {
  auto [raw, lnk] = raw_peer_and_link();
  watchdog dog{lnk};
  REQUIRE(write_all(raw.get(), byte_buffer{0x05, 0x00}));
  raw.reset();
  auto got = lnk->recv();
  REQUIRE_FALSE(got);
  CHECK(is(got.error(), errc::link_closed));
  CHECK(describe(got.error()).find("after 2 of 4 header bytes") != std::string::npos);
}

// r[verify link.rx.eof]
TEST_CASE("tcp links see a clean end of stream when the peer closes at a frame boundary",
          "[transport][tcp]") {
  auto [client, server] = tcp_pair();
  watchdog dog{server};
  REQUIRE(client->send(byte_buffer{1, 2, 3}));
  client->close();
  auto late = client->send(byte_buffer{4});
  REQUIRE_FALSE(late);
  CHECK(is(late.error(), errc::closed));
  auto got = server->recv();
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == byte_buffer{1, 2, 3});
  for (int i = 0; i < 2; ++i) {
    auto eof = server->recv();
    REQUIRE(eof);
    CHECK_FALSE(*eof);
  }
  // Closing our direction leaves the other one open.
  REQUIRE(server->send(byte_buffer{9}));
  watchdog client_dog{client};
  auto back = client->recv();
  REQUIRE(back);
  REQUIRE(*back);
  CHECK(**back == byte_buffer{9});
}

TEST_CASE("aborting a tcp link wakes a blocked recv with closed", "[transport][tcp]") {
  auto [raw, lnk] = raw_peer_and_link();
  // Should abort fail to wake the reader, ending the raw peer does, and the test fails.
  watchdog dog{[fd = raw.get()] { ::shutdown(fd, SHUT_RDWR); }};
  std::atomic<pid_t> tid{0};
  std::atomic<bool> finished{false};
  std::optional<recv_result> result;
  {
    peer_thread reader{[&lnk = lnk] { lnk->abort(); }, [&] {
                         tid = vox::test::current_tid();
                         result.emplace(lnk->recv());
                         finished = true;
                       }};
    REQUIRE(vox::test::wait_until_blocked(tid, finished));
    lnk->abort();
    reader.join();
  }
  CHECK_FALSE(dog.fired());
  REQUIRE(result);
  REQUIRE_FALSE(*result);
  CHECK(is(result->error(), errc::closed));
  auto sent = lnk->send(byte_buffer{1});
  REQUIRE_FALSE(sent);
  CHECK(is(sent.error(), errc::closed));
  auto again = lnk->recv();
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::closed));
  // The peer sees the connection end.
  CHECK(reads_eof(raw.get()));
}

TEST_CASE("sending to a tcp peer that is gone fails with link_closed, not SIGPIPE",
          "[transport][tcp]") {
  auto [client, server] = tcp_pair();
  server.reset();
  // The first writes may still be accepted by the kernel; the peer's reset makes a later
  // one fail. Without MSG_NOSIGNAL the process would die of SIGPIPE here.
  std::optional<caf::error> failure;
  byte_buffer chunk(1024, 0x77);
  for (int i = 0; i < 10000 && !failure; ++i)
    if (auto sent = client->send(chunk); !sent)
      failure = sent.error();
  REQUIRE(failure);
  CHECK(is(*failure, errc::link_closed));
  // A frame may have been cut short: later sends must not add to the broken stream.
  auto again = client->send(chunk);
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::link_closed));
}

TEST_CASE("tcp links describe both endpoints", "[transport][tcp]") {
  auto listener = tcp_listener::bind("127.0.0.1", 0);
  REQUIRE(listener);
  auto port = std::to_string((*listener)->port());
  auto client = tcp_connect("127.0.0.1", (*listener)->port());
  REQUIRE(client);
  auto server = (*listener)->accept();
  REQUIRE(server);
  auto c = (*client)->describe();
  auto s = (*server)->describe();
  CHECK(c.rfind("tcp 127.0.0.1:", 0) == 0);
  CHECK(c.ends_with("->127.0.0.1:" + port));
  // Each side names itself first: the two descriptions mirror each other.
  auto arrow_c = c.find("->");
  auto arrow_s = s.find("->");
  REQUIRE(arrow_c != std::string::npos);
  REQUIRE(arrow_s != std::string::npos);
  CHECK(c.substr(4, arrow_c - 4) == s.substr(arrow_s + 2));
  CHECK(s.substr(4, arrow_s - 4) == c.substr(arrow_c + 2));
}

/// Blocks in `l.accept()` on a thread, calls `l.shutdown()` once that thread is blocked,
/// and returns what accept gave. Should shutdown fail to wake accept, `connect` (run by a
/// watchdog) does, and the test fails instead of hanging.
template <class Listener, class Connect>
std::optional<caf::expected<link_ptr>> accept_woken_by_shutdown(Listener& l, Connect connect) {
  std::optional<caf::expected<link_ptr>> result;
  watchdog dog{std::move(connect)};
  std::atomic<pid_t> tid{0};
  std::atomic<bool> finished{false};
  peer_thread acceptor{[&l] { l.shutdown(); }, [&] {
                         tid = vox::test::current_tid();
                         result.emplace(l.accept());
                         finished = true;
                       }};
  REQUIRE(vox::test::wait_until_blocked(tid, finished));
  l.shutdown();
  acceptor.join();
  CHECK_FALSE(dog.fired());
  return result;
}

TEST_CASE("tcp_listener::shutdown wakes a blocked accept", "[transport][tcp]") {
  auto listener = tcp_listener::bind("127.0.0.1", 0);
  REQUIRE(listener);
  auto& l = **listener;
  auto port = l.port();
  auto result = accept_woken_by_shutdown(l, [port] { raw_connect(port); });
  REQUIRE(result);
  REQUIRE_FALSE(*result);
  CHECK(is(result->error(), errc::closed));
  auto again = l.accept();
  REQUIRE_FALSE(again);
  CHECK(is(again.error(), errc::closed));
}

TEST_CASE("tcp_connect fails cleanly when nobody listens", "[transport][tcp]") {
  uint16_t port = 0;
  {
    auto listener = tcp_listener::bind("127.0.0.1", 0);
    REQUIRE(listener);
    port = (*listener)->port();
  }
  auto client = tcp_connect("127.0.0.1", port);
  REQUIRE_FALSE(client);
  CHECK(is(client.error(), errc::io_error));
  CHECK(describe(client.error()).find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
}

TEST_CASE("tcp links work over IPv6 loopback where it exists", "[transport][tcp]") {
  auto listener = tcp_listener::bind("::1", 0);
  if (!listener) {
    WARN("no IPv6 loopback here: " << describe(listener.error()));
    return;
  }
  auto client = tcp_connect("::1", (*listener)->port());
  REQUIRE(client);
  auto server = (*listener)->accept();
  REQUIRE(server);
  watchdog dog{*server};
  CHECK((*client)->describe().rfind("tcp [::1]:", 0) == 0);
  REQUIRE((*client)->send(byte_buffer{6}));
  auto got = (*server)->recv();
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == byte_buffer{6});
}

TEST_CASE("unix links carry payloads both ways and end cleanly", "[transport][unix]") {
  temp_dir dir;
  REQUIRE_FALSE(dir.path().empty());
  auto path = (dir.path() / "vox.sock").string();
  {
    auto listener = unix_listener::bind(path);
    REQUIRE(listener);
    CHECK(std::filesystem::is_socket(path));
    auto client = unix_connect(path);
    REQUIRE(client);
    auto server = (*listener)->accept();
    REQUIRE(server);
    watchdog dog_c{*client};
    watchdog dog_s{*server};
    CHECK((*client)->describe() == "unix connected to " + path);
    REQUIRE((*client)->send(byte_buffer{1, 2}));
    REQUIRE((*client)->send({}));
    REQUIRE((*server)->send(byte_buffer(50000, 0x33)));
    auto a = (*server)->recv();
    REQUIRE(a);
    REQUIRE(*a);
    CHECK(**a == byte_buffer{1, 2});
    auto b = (*server)->recv();
    REQUIRE(b);
    REQUIRE(*b);
    CHECK((*b)->empty());
    auto c = (*client)->recv();
    REQUIRE(c);
    REQUIRE(*c);
    CHECK(**c == byte_buffer(50000, 0x33));
    (*client)->close();
    auto eof = (*server)->recv();
    REQUIRE(eof);
    CHECK_FALSE(*eof);
  }
  // r[verify transport.stream]
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("unix_listener replaces a stale socket file but not a live one or a plain file",
          "[transport][unix]") {
  temp_dir dir;
  REQUIRE_FALSE(dir.path().empty());
  auto path = (dir.path() / "vox.sock").string();
  {
    // A socket file whose listener is gone: bind a raw socket and close it.
    unique_fd stale{::socket(AF_UNIX, SOCK_STREAM, 0)};
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  REQUIRE(std::filesystem::is_socket(path));
  auto first = unix_listener::bind(path);
  REQUIRE(first);
  auto second = unix_listener::bind(path);
  REQUIRE_FALSE(second);
  CHECK(is(second.error(), errc::io_error));
  // The live listener still works after the refused attempt.
  auto client = unix_connect(path);
  REQUIRE(client);
  auto server = (*first)->accept();
  REQUIRE(server);
  first->reset();
  CHECK_FALSE(std::filesystem::exists(path));
  auto plain = (dir.path() / "plain").string();
  std::ofstream{plain} << "not a socket";
  auto refused = unix_listener::bind(plain);
  REQUIRE_FALSE(refused);
  CHECK(std::filesystem::is_regular_file(plain));
}

TEST_CASE("unix_listener::shutdown wakes a blocked accept", "[transport][unix]") {
  temp_dir dir;
  REQUIRE_FALSE(dir.path().empty());
  auto path = (dir.path() / "vox.sock").string();
  auto listener = unix_listener::bind(path);
  REQUIRE(listener);
  auto result = accept_woken_by_shutdown(**listener, [path] { [[maybe_unused]] auto conn = unix_connect(path); });
  REQUIRE(result);
  REQUIRE_FALSE(*result);
  CHECK(is(result->error(), errc::closed));
}
