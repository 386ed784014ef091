// Fixtures for session tests: an actor system, session pairs over memory or TCP links,
// and a "raw peer" that speaks Messages by hand to one session.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/handles.hpp"
#include "actors/session_actor.hpp"
#include "actors/session_server.hpp"
#include "protocol/message.hpp"
#include "transport/memory_link.hpp"
#include "transport/tcp_link.hpp"
#include "transport/unix_link.hpp"

namespace vox::test {

using namespace std::chrono_literals;

/// Bound for every wait in these tests: generous, never reached by a passing run.
constexpr auto wait_bound = 5s;

/// Polls `done` until it holds or `wait_bound` passes; its last answer. For conditions
/// no one signals, such as a count another thread's cleanup lowers.
template <class Predicate>
bool eventually(Predicate done) {
  auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (!done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  return done();
}

/// True while the event-based actor behind `a` waits for messages with an empty mailbox
/// (nothing was sent to it since it last ran).
template <class Handle>
bool idle(const Handle& a) {
  auto* self = dynamic_cast<caf::scheduled_actor*>(caf::actor_cast<caf::abstract_actor*>(a));
  return self != nullptr && self->mailbox().blocked();
}

/// Session options that keep diagnostics out of the test output.
inline session_options logless() {
  session_options o;
  o.log = [](const std::string&) {};
  return o;
}

/// A session's diagnostics, kept so that a test can wait for an event the session logs
/// ("link lost", "resumed on") instead of polling its state. Shared with the session's
/// log sink, so it outlives the session.
struct log_recorder {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> lines;

  /// `options` with their diagnostics going to a fresh recorder, which is returned.
  static std::shared_ptr<log_recorder> attach(session_options& options) {
    auto rec = std::make_shared<log_recorder>();
    options.log = [rec](const std::string& line) {
      {
        std::lock_guard<std::mutex> guard{rec->mtx};
        rec->lines.push_back(line);
      }
      rec->cv.notify_all();
    };
    return rec;
  }

  /// Waits at most `wait_bound` until `n` lines contain `text`.
  bool wait_for(const std::string& text, size_t n = 1) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, wait_bound, [&] {
      return static_cast<size_t>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
               return l.find(text) != std::string::npos;
             }))
             >= n;
    });
  }
};

/// The sessions a session_server establishes, in order (see `hook`).
struct accepted_sessions {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<session_actor> sessions;

  /// Makes `cfg` report its sessions here; this must outlive the server.
  void hook(session_server::config& cfg) {
    cfg.on_session = [this](const session_handle& h) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        sessions.push_back(h.actor);
      }
      cv.notify_all();
    };
  }

  /// The `n`-th session (1-based), waiting at most `wait_bound` for it; null if none.
  session_actor wait_for(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    if (!cv.wait_for(guard, wait_bound, [&] { return sessions.size() >= n; }))
      return {};
    return sessions[n - 1];
  }
};

/// `logless()` options whose root connection is served by `handler`.
inline session_options serving(call_handler handler) {
  auto o = logless();
  o.root_handler = std::move(handler);
  return o;
}

/// Two connected TCP links on 127.0.0.1 (client end first, with `client_options`).
inline std::pair<link_ptr, link_ptr> tcp_link_pair(link_options client_options = {}) {
  auto listener = tcp_listener::bind("127.0.0.1", 0);
  if (!listener)
    throw std::runtime_error(describe(listener.error()));
  auto client = tcp_connect("127.0.0.1", (*listener)->port(), client_options);
  auto server = (*listener)->accept();
  if (!client || !server)
    throw std::runtime_error("tcp link pair: connect or accept failed");
  return {*client, *server};
}

/// Two connected Unix-socket links through a socket at `path` (client end first).
inline std::pair<link_ptr, link_ptr> unix_link_pair(const std::string& path) {
  auto listener = unix_listener::bind(path);
  if (!listener)
    throw std::runtime_error(describe(listener.error()));
  auto client = unix_connect(path);
  auto server = (*listener)->accept();
  if (!client || !server)
    throw std::runtime_error("unix link pair: connect or accept failed");
  return {*client, *server};
}

/// A connected link pair of the named kind: "memory" or "tcp" (127.0.0.1).
inline std::pair<link_ptr, link_ptr> link_pair(const std::string& kind) {
  return kind == "tcp" ? tcp_link_pair() : make_memory_link_pair();
}

/// Runs the enclosing test case once per link kind (Catch2 generator); use the value with
/// `link_pair`. A failure names the kind.
#define VOX_EACH_LINK_KIND() GENERATE(as<std::string>{}, "memory", "tcp")

inline caf::actor_system_config& quiet_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads", 2);
  return cfg;
}

struct actor_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{quiet_config(cfg)};
  caf::scoped_actor self{sys};
  /// Sessions stopped when the test ends: ~actor_system waits for every actor.
  std::vector<session_actor> sessions;

  ~actor_fixture() {
    for (auto& s : sessions)
      caf::anon_send(s, stop_atom::value);
  }

  session_handle track(session_handle h) {
    sessions.push_back(h.actor);
    return h;
  }

  /// Waits for `actor` to terminate; returns its exit reason, or nullopt on timeout.
  template <class Handle>
  std::optional<caf::error> wait_down(const Handle& actor) {
    self->monitor(actor);
    std::optional<caf::error> reason;
    self->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                  caf::after(wait_bound) >> [] {});
    return reason;
  }

  session_info info(const session_actor& s) {
    session_info out;
    self->request(s, wait_bound, caf::get_atom::value)
      .receive([&](session_info& i) { out = i; }, [](caf::error&) {});
    return out;
  }

  caf::expected<call_response> call(const caller& c, method_id_t method, payload args) {
    return call_with(self, c, method, std::move(args));
  }

  caf::expected<connection_handle> open(const session_actor& s, connection_settings settings,
                                        metadata md = {}, call_handler handler = {}) {
    return open_with(self, s, settings, std::move(md), std::move(handler));
  }

  caf::error close(const session_actor& s, connection_id id, metadata md = {}) {
    caf::error out;
    self->request(s, wait_bound, caf::close_atom::value, id, std::move(md))
      .receive([](caf::ok_atom) {}, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// A call on `c` made with `actor` (each thread needs its own scoped_actor).
  static caf::expected<call_response> call_with(caf::scoped_actor& actor, const caller& c,
                                                method_id_t method, payload args) {
    caf::expected<call_response> out = caf::error{};
    actor->request(c.driver(), wait_bound, call_atom::value, outgoing_call{method, {}, std::move(args)})
      .receive([&](call_response& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  static caf::expected<connection_handle> open_with(caf::scoped_actor& actor, const session_actor& s,
                                                    connection_settings settings, metadata md = {},
                                                    call_handler handler = {}) {
    caf::expected<connection_handle> out = caf::error{};
    actor->request(s, wait_bound, caf::open_atom::value, open_request{settings, std::move(md), std::move(handler)})
      .receive([&](connection_handle& h) { out = std::move(h); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  /// Runs `fn(scoped_actor&)` on its own thread; the future holds its result.
  template <class F>
  auto async(F fn) {
    return std::async(std::launch::async, [this, fn = std::move(fn)]() mutable {
      caf::scoped_actor actor{sys};
      return fn(actor);
    });
  }
};

/// Answers every call with its own arguments wrapped as Ok (postcard `00` + args).
inline call_handler echo_handler() {
  return [](incoming_call in, reply_sink sink) {
    payload ret{0x00};
    ret.insert(ret.end(), in.args.begin(), in.args.end());
    sink.reply(std::move(ret));
  };
}

/// An acceptor that accepts every open with the opposite parity and an echo handler.
inline connection_acceptor echo_acceptor(std::shared_ptr<std::vector<connection_handle>> opened = nullptr) {
  return [opened](connection_id, const connection_settings& peer, const metadata&)
           -> std::variant<accept_connection, reject_connection> {
    accept_connection yes;
    yes.settings = {opposite(peer.parity), 64};
    yes.handler = echo_handler();
    if (opened)
      yes.on_open = [opened](const connection_handle& h) { opened->push_back(h); };
    return yes;
  };
}

/// Two sessions connected by `links` (initiator on first, acceptor on second).
struct session_pair {
  session_handle client;
  session_handle server;
};

inline session_pair make_session_pair(actor_fixture& f, std::pair<link_ptr, link_ptr> links,
                                      session_options client_opts, session_options server_opts) {
  auto& sys = f.sys;
  std::promise<caf::expected<session_handle>> server_result;
  std::thread acceptor{[&] {
    server_result.set_value(accept_session(sys, links.second, std::move(server_opts)));
  }};
  auto client = connect_session(sys, links.first, std::move(client_opts));
  acceptor.join();
  auto server = server_result.get_future().get();
  if (!client || !server)
    throw std::runtime_error("session establishment failed: "
                             + describe(client ? server.error() : client.error()));
  return {f.track(std::move(*client)), f.track(std::move(*server))};
}

/// Two sessions over a memory link; the server accepts every virtual connection with
/// `echo_acceptor(opened)`.
inline session_pair make_echo_pair(actor_fixture& f, std::shared_ptr<std::vector<connection_handle>> opened) {
  auto server_opts = logless();
  server_opts.acceptor = echo_acceptor(std::move(opened));
  return make_session_pair(f, make_memory_link_pair(), logless(), server_opts);
}

/// True once the actor behind `addr` is destroyed and its allocation is held by no weak
/// reference but `addr` itself, which the caller keeps.
inline bool only_this_reference_left(const caf::actor_addr& addr) {
  auto* block = caf::actor_cast<caf::actor_control_block*>(addr);
  return block->strong_refs.load() == 0 && block->weak_refs.load() == 1;
}

/// One session whose peer is the test itself, speaking Messages over a memory link.
struct raw_peer {
  link_ptr link;
  session_handle session;

  void send(message msg) {
    auto bytes = encode_message(msg);
    (void) link->send(bytes);
  }

  void send_bytes(const byte_buffer& bytes) { (void) link->send(bytes); }

  /// The next Message from the session; nullopt at end of stream or after `wait_bound`.
  std::optional<message> recv() {
    auto fut = std::async(std::launch::async, [this] { return link->recv(); });
    if (fut.wait_for(wait_bound) != std::future_status::ready) {
      link->abort(); // unblocks the pending recv; the test then fails on nullopt
      fut.wait();
      return std::nullopt;
    }
    auto frame = fut.get();
    if (!frame || !*frame)
      return std::nullopt;
    auto m = decode_message(**frame);
    if (!m)
      return std::nullopt;
    return std::move(*m);
  }

  /// Receives until a message whose payload is a `T`, skipping keepalive traffic.
  template <class T>
  std::optional<std::pair<connection_id, T>> recv_as() {
    for (;;) {
      auto m = recv();
      if (!m)
        return std::nullopt;
      if (auto* p = std::get_if<T>(&m->payload))
        return std::make_pair(m->connection_id, std::move(*p));
      if (std::holds_alternative<ping>(m->payload) || std::holds_alternative<pong>(m->payload))
        continue;
      return std::nullopt;
    }
  }

  /// True once the session closed its side of the link (skipping other traffic).
  bool sees_eof() {
    for (;;) {
      auto fut = std::async(std::launch::async, [this] { return link->recv(); });
      if (fut.wait_for(wait_bound) != std::future_status::ready) {
        link->abort();
        fut.wait();
        return false;
      }
      auto frame = fut.get();
      if (!frame)
        return false;
      if (!*frame)
        return true;
    }
  }
};

/// Every item of the receiving end `in` up to the sender's Close; nullopt if the channel
/// failed or an item took longer than `wait_bound`.
template <class Rx>
std::optional<std::vector<typename Rx::element_type>> drain(const Rx& in) {
  std::vector<typename Rx::element_type> got;
  for (;;) {
    auto item = in.recv_for(wait_bound);
    if (!item)
      return std::nullopt;
    if (!*item)
      return got;
    got.push_back(std::move(**item));
  }
}

/// The next Response the raw peer receives: {connection, request id, response}.
struct seen_response {
  connection_id connection = 0;
  request_id id = 0;
  request_response response;
};

inline std::optional<seen_response> next_response(raw_peer& peer) {
  auto m = peer.recv_as<request_message>();
  if (!m)
    return std::nullopt;
  auto* r = std::get_if<request_response>(&m->second.body);
  if (!r)
    return std::nullopt;
  return seen_response{m->first, m->second.id, std::move(*r)};
}


/// The next Call the raw peer receives: {connection, request id, call}.
struct seen_request {
  connection_id connection = 0;
  request_id id = 0;
  request_call call;
};

inline std::optional<seen_request> next_call(raw_peer& peer) {
  auto m = peer.recv_as<request_message>();
  if (!m)
    return std::nullopt;
  auto* c = std::get_if<request_call>(&m->second.body);
  if (!c)
    return std::nullopt;
  return seen_request{m->first, m->second.id, std::move(*c)};
}

/// Opens a virtual connection from `peer.session` that the raw side accepts with
/// {Even, 64}; returns the id the session chose and the handle it got.
inline std::pair<connection_id, caf::expected<connection_handle>> open_accepted(actor_fixture& f, raw_peer& peer) {
  auto opened = f.async([&](caf::scoped_actor& a) {
    return actor_fixture::open_with(a, peer.session.actor, {parity::odd, 64});
  });
  auto open = peer.recv_as<connection_open>();
  if (!open)
    return {0, make_error(errc::timeout, "no ConnectionOpen")};
  peer.send(message{open->first, connection_accept{{parity::even, 64}, {}}});
  return {open->first, opened.get()};
}

/// The max_concurrent_requests each side announced in a raw peer's handshake.
struct request_limits {
  uint32_t ours = 64;   ///< the session's
  uint32_t theirs = 64; ///< the test's
};

/// The handshake a raw peer's session is made with: `role` picks our parity (initiator
/// Odd, acceptor Even). A session with `resumable` options gets a resume key, so that the
/// test can resume it (`resume_raw_peer`).
inline handshake_result raw_handshake(session_role role, request_limits limits, bool resumable) {
  handshake_result hs;
  hs.role = role;
  auto p = role == session_role::initiator ? parity::odd : parity::even;
  hs.our_settings = {p, limits.ours};
  hs.peer_settings = {opposite(p), limits.theirs};
  if (resumable)
    hs.session_resume_key.emplace().fill(0x5a);
  return hs;
}

/// A session over one end of `links` (memory by default), already past the handshake,
/// with the test as its peer on the other end (see raw_handshake).
/// `Fixture`: an `actor_fixture`, or anything with `sys` and `track`.
template <class Fixture>
raw_peer make_raw_peer(Fixture& f, session_role role, session_options opts = {},
                       std::pair<link_ptr, link_ptr> links = make_memory_link_pair(),
                       request_limits limits = {}) {
  auto [ours, theirs] = std::move(links);
  auto hs = raw_handshake(role, limits, opts.resumable);
  raw_peer out;
  out.link = theirs;
  out.session = f.track(spawn_session(f.sys, ours, hs, std::move(opts)));
  return out;
}

/// Resumes a resumable raw peer's session on a fresh memory link, as a handshake that
/// presented its key would (`epoch` tags the new link's input: one per resume); the test
/// speaks on the new link from then on. The session aborts the old link if it still had it.
inline caf::error resume_raw_peer(actor_fixture& f, raw_peer& peer, session_role role, uint64_t epoch,
                                  request_limits limits = {}) {
  auto [ours, theirs] = make_memory_link_pair();
  caf::error err;
  f.self->request(peer.session.actor, wait_bound, resume_msg{ours, raw_handshake(role, limits, true), epoch, nullptr})
    .receive([](caf::ok_atom) {}, [&](caf::error& e) { err = std::move(e); });
  peer.link = theirs;
  return err;
}

} // namespace vox::test
