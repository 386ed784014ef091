// A typed vox service in one file: declare it once, serve it over TCP, and call it from
// blocking code and from an event-based actor, with a user error and a streamed result.
//
//   calculator            runs server and client in one process on 127.0.0.1 and exits 0
//                         when every answer was right
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/service.hpp"
#include "actors/session_server.hpp"

namespace calc {

// A user error: a Rust `#[repr(u8)] enum CalcError { DivisionByZero, Overflow }`.
enum class calc_error : uint8_t { division_by_zero, overflow };
VOX_ENUM(calc_error, "CalcError", "DivisionByZero", "Overflow")

// The service, declared once: ids, codecs, schemas, client and dispatcher all come from it.
using add = vox::method<"add", int64_t(int64_t, int64_t)>;
using divide = vox::method<"divide", int64_t(int64_t, int64_t), calc_error>;
// The handler sends the squares 0, 1, 4, … on `out`, 8 credits at a time.
using squares = vox::method<"squares", void(uint32_t, vox::tx<int64_t, 8>)>;
using service = vox::service<"Calculator", add, divide, squares>;

vox::call_handler handler() {
  vox::service_dispatcher<service> d;
  d.on<add>([](int64_t a, int64_t b, vox::responder<service, add> r) { r.ok(a + b); });
  d.on<divide>([](int64_t a, int64_t b, vox::responder<service, divide> r) {
    if (b == 0)
      r.err(calc_error::division_by_zero);
    else if (a == INT64_MIN && b == -1)
      r.err(calc_error::overflow);
    else
      r.ok(a / b);
  });
  // A method with channels runs in an event-based actor of its own (`self`): items go out
  // as the caller's credit allows, and no thread ever waits for it.
  d.on<squares>([](caf::event_based_actor* self, uint32_t n, vox::tx<int64_t, 8> out,
                   vox::responder<service, squares> r) {
    out.send_all(
      self,
      [i = uint32_t{0}, n]() mutable -> std::optional<int64_t> {
        if (i == n)
          return std::nullopt; // done: the channel closes
        ++i;
        return int64_t{i - 1} * (i - 1);
      },
      [r](const caf::error&) { r.ok({}); }); // Close is on the wire before this Response
  });
  return d.handler();
}

} // namespace calc

int main() {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  bool ok = true;
  auto check = [&ok](bool cond, const char* what) {
    std::printf("%-40s %s\n", what, cond ? "ok" : "WRONG");
    ok = ok && cond;
  };

  // Server: every accepted TCP connection becomes an acceptor session serving Calculator.
  vox::session_server::config server_cfg;
  server_cfg.options.root_handler = calc::handler();
  auto server = vox::session_server::start(sys, server_cfg);
  if (!server) {
    std::fprintf(stderr, "server: %s\n", vox::describe(server.error()).c_str());
    return 1;
  }

  // Client: one session; a caller on its root connection keeps it open.
  auto link = vox::tcp_connect("127.0.0.1", (*server)->port());
  auto session = link ? vox::connect_session(sys, *link, {}) : caf::expected<vox::session_handle>{link.error()};
  if (!session) {
    std::fprintf(stderr, "client: %s\n", vox::describe(session.error()).c_str());
    return 1;
  }
  {
    vox::client<calc::service> calculator{vox::caller{session->root}};

    // From blocking code.
    caf::scoped_actor self{sys};
    auto sum = calculator.call<calc::add>(self, {40, 2}, std::chrono::seconds{5});
    check(sum && sum->is_ok() && sum->ok() == 42, "add(40, 2) = 42");
    auto bad = calculator.call<calc::divide>(self, {1, 0}, std::chrono::seconds{5});
    check(bad && !bad->is_ok()
            && bad->err() == vox::vox_error<calc::calc_error>{std::in_place_index<0>, calc::calc_error::division_by_zero},
          "divide(1, 0) = Err(DivisionByZero)");

    // A streamed result, from an event-based actor: the call's Response and the items
    // arrive as callbacks in the actor; credit goes back as it consumes them.
    std::promise<int64_t> streamed;
    sys.spawn(
      [&calculator](caf::event_based_actor* actor, std::promise<int64_t>* result) {
        auto [out, in] = vox::channel<int64_t, 8>();
        auto total = std::make_shared<int64_t>(0);
        calculator.request<calc::squares>(actor, {20, out}, [](caf::expected<calc::squares::result_type>) {});
        in.for_each(
          actor, [total](int64_t v) { *total += v; },
          [=](const caf::error& err) { result->set_value(err ? -1 : *total); });
      },
      &streamed);
    check(streamed.get_future().get() == 2470, "sum of squares(20) from an actor = 2470");

    // The same from blocking code: drain our end while the call is pending (its Response
    // comes last).
    auto [out, in] = vox::channel<int64_t, 8>();
    auto call = std::async(std::launch::async, [&, out = out] {
      caf::scoped_actor caller_self{sys};
      return calculator.call<calc::squares>(caller_self, {20, out}, std::chrono::seconds{5});
    });
    int64_t total = 0;
    while (auto item = in.recv_for(std::chrono::seconds{5})) {
      if (!*item)
        break; // Close
      total += **item;
    }
    auto done = call.get();
    check(done && done->is_ok() && total == 2470, "sum of squares(20), blocking = 2470");

    // From an event-based actor: request(...).then(...) never blocks a CAF worker.
    std::promise<int64_t> answer;
    sys.spawn(
      [&calculator](caf::event_based_actor* actor, std::promise<int64_t>* result) {
        calculator.request<calc::divide>(actor, {84, 2}, [=](caf::expected<calc::divide::result_type> r) {
          result->set_value(r && r->is_ok() ? r->ok() : -1);
          actor->quit();
        });
      },
      &answer);
    check(answer.get_future().get() == 42, "divide(84, 2) from an actor = 42");
  }
  // The last root caller is gone: the session closes; stop the server too.
  (*server)->stop();
  std::printf("%s\n", ok ? "all answers right" : "SOME ANSWERS WRONG");
  return ok ? 0 : 1;
}
