#include "bench/workloads.hpp"

#include <memory>
#include <optional>
#include <thread>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "bench/driving.hpp"

#include "transport/memory_link.hpp"

namespace voxbench {

namespace {

// -- calls ------------------------------------------------------------------------------

struct call_state : run_state<measurement> {
  call_state(vox::driver_actor d, timing t) : driver(std::move(d)), body(make_body()), clock(t) {}
  vox::driver_actor driver;
  vox::payload body;
  int inflight = 0;
  phase_clock clock;
  std::optional<latency_recorder> latency; ///< one-outstanding rows only

  measurement result() {
    auto m = clock.result();
    if (latency)
      m.latency = latency->summary();
    return m;
  }
};

void issue_call(caf::event_based_actor* self, std::shared_ptr<call_state> st) {
  ++st->inflight;
  vox::outgoing_call call;
  call.method_id = 1;
  call.args = st->body;
  auto sent = clock_type::now();
  self->request(st->driver, caf::infinite, vox::call_atom::value, std::move(call))
    .then(
      [self, st, sent](vox::call_response& r) {
        auto now = clock_type::now();
        --st->inflight;
        if (st->finished)
          return;
        if (!is_echo_of(r.ret, st->body)) {
          st->finish(self, measurement::failed("a reply was not the echo of its call"));
          return;
        }
        bool more = st->clock.complete(now);
        if (st->latency && st->clock.last_counted())
          st->latency->add(now - sent);
        if (more)
          issue_call(self, st);
        else if (st->inflight == 0)
          st->finish(self, st->result());
      },
      [self, st](caf::error& e) {
        --st->inflight;
        st->finish(self, measurement::failed("call failed: " + self->system().render(e)));
      });
}

// -- open + close ----------------------------------------------------------------------

struct open_close_state : run_state<measurement> {
  open_close_state(const vox::connection_handle& root, timing t)
    : session(root.session), settings{root.local_settings.parity, 64}, clock(t) {}
  vox::session_actor session;
  vox::connection_settings settings;
  phase_clock clock;
};

void open_then_close(caf::event_based_actor* self, std::shared_ptr<open_close_state> st) {
  auto fail = [self, st](const char* what) {
    return [self, st, what](caf::error& e) {
      st->finish(self, measurement::failed(std::string{what} + " failed: " + self->system().render(e)));
    };
  };
  vox::open_request req;
  req.settings = st->settings;
  self->request(st->session, caf::infinite, caf::open_atom::value, std::move(req))
    .then(
      [self, st, fail](vox::connection_handle& h) {
        self->request(st->session, caf::infinite, caf::close_atom::value, h.id, vox::metadata{})
          .then(
            [self, st](caf::ok_atom) {
              if (st->clock.complete(clock_type::now()))
                open_then_close(self, st);
              else
                st->finish(self, st->clock.result());
            },
            fail("close"));
      },
      fail("open"));
}

// -- many idle connections -------------------------------------------------------------

struct open_many_state : run_state<open_many_result> {
  vox::session_actor session;
  vox::connection_settings settings;
  size_t target = 0;
  size_t issued = 0;
  clock_type::time_point start = clock_type::now();
  open_many_result out;
};

void issue_open(caf::event_based_actor* self, std::shared_ptr<open_many_state> st) {
  ++st->issued;
  vox::open_request req;
  req.settings = st->settings;
  self->request(st->session, caf::infinite, caf::open_atom::value, std::move(req))
    .then(
      [self, st](vox::connection_handle& h) {
        if (st->finished)
          return;
        st->out.callers.emplace_back(h);
        if (st->issued < st->target) {
          issue_open(self, st);
        } else if (st->out.callers.size() == st->target) {
          st->out.seconds = seconds_since(st->start);
          st->finish(self, std::move(st->out));
        }
      },
      [self, st](caf::error& e) {
        open_many_result r;
        r.error = "open failed: " + self->system().render(e);
        st->finish(self, std::move(r));
      });
}

} // namespace

measurement measure_calls(caf::actor_system& sys, const vox::caller& c, int depth, timing t) {
  if (!c || depth < 1)
    return measurement::failed("no caller");
  auto limit = limit_of(t);
  auto st = std::make_shared<call_state>(c.driver(), t);
  if (depth == 1)
    st->latency.emplace(t.measure_s, 250000); // above what one outstanding call reaches here
  return run_bounded(sys, st, limit, measurement::failed(timeout_text(limit)),
                     [depth](caf::event_based_actor* self, std::shared_ptr<call_state> st) {
                       for (int i = 0; i < depth; ++i)
                         issue_call(self, st);
                     });
}

measurement measure_open_close(caf::actor_system& sys, const vox::connection_handle& root, timing t) {
  auto limit = limit_of(t);
  auto st = std::make_shared<open_close_state>(root, t);
  return run_bounded(sys, st, limit, measurement::failed(timeout_text(limit)),
                     [](caf::event_based_actor* self, std::shared_ptr<open_close_state> st) {
                       open_then_close(self, st);
                     });
}

open_many_result open_many(caf::actor_system& sys, const vox::connection_handle& root, size_t n, int depth,
                           std::chrono::seconds limit) {
  auto st = std::make_shared<open_many_state>();
  st->session = root.session;
  st->settings = {root.local_settings.parity, 64};
  st->target = n;
  st->out.callers.reserve(n);
  open_many_result on_timeout;
  on_timeout.error = "the opens did not finish within " + std::to_string(limit.count()) + " s";
  if (n == 0)
    return {};
  return run_bounded(sys, st, limit, std::move(on_timeout),
                     [depth](caf::event_based_actor* self, std::shared_ptr<open_many_state> st) {
                       while (st->issued < st->target && st->issued < static_cast<size_t>(std::max(1, depth)))
                         issue_open(self, st);
                     });
}

caf::expected<memory_sessions> start_memory_sessions(caf::actor_system& sys) {
  auto links = vox::make_memory_link_pair();
  // connect and accept both block for the handshake: run them on two threads.
  caf::expected<vox::session_handle> server = caf::error{};
  std::thread acceptor{[&] { server = vox::accept_session(sys, links.second, bench_options()); }};
  auto client = vox::connect_session(sys, links.first, bench_options());
  acceptor.join();
  if (!client) {
    if (server)
      stop_session(*server);
    return std::move(client.error());
  }
  if (!server) {
    stop_session(*client);
    return std::move(server.error());
  }
  return memory_sessions{std::move(*client), std::move(*server)};
}

void stop_session(const vox::session_handle& s) {
  if (s.actor)
    caf::anon_send(s.actor, vox::stop_atom::value);
}

std::optional<vox::session_info> session_info_of(caf::actor_system& sys, const vox::session_handle& s,
                                                 std::chrono::seconds limit) {
  // Not a hot path: a scoped_actor is fine for one request.
  std::optional<vox::session_info> out;
  caf::scoped_actor self{sys};
  self->request(s.actor, limit, caf::get_atom::value)
    .receive([&](vox::session_info& info) { out = info; }, [](caf::error&) {});
  return out;
}

} // namespace voxbench
