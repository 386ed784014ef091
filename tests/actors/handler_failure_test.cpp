// A handler that throws: the caller gets Cancelled, the session goes on, and the failure
// is logged once with the method's name.
#include <catch2/catch.hpp>

#include <mutex>
#include <stdexcept>

#include <caf/event_based_actor.hpp>

#include "actors/service.hpp"
#include "support/session_fixture.hpp"

using namespace vox;
using namespace vox::test;

namespace {

using boom = method<"boom", int32_t(int32_t)>;
using boom_channel = method<"boom_channel", int64_t(rx<int32_t>)>;
using fragile = service<"Fragile", boom, boom_channel>;

struct log_lines {
  std::mutex mtx;
  std::vector<std::string> lines;
  std::vector<std::string> matching(const std::string& needle) {
    std::lock_guard<std::mutex> guard{mtx};
    std::vector<std::string> out;
    for (auto& l : lines)
      if (l.find(needle) != std::string::npos)
        out.push_back(l);
    return out;
  }
};

session_options logging_to(std::shared_ptr<log_lines> log) {
  session_options o;
  o.log = [log](const std::string& line) {
    std::lock_guard<std::mutex> guard{log->mtx};
    log->lines.push_back(line);
  };
  return o;
}

bool is_cancelled(const payload& ret) { return ret == cancelled_response(); }

} // namespace

// r[verify rpc.handler]
TEST_CASE("a typed handler that throws is logged once with its method and the caller gets Cancelled",
          "[actors][handler]") {
  actor_fixture f;
  auto log = std::make_shared<log_lines>();
  service_dispatcher<fragile> d;
  d.on<boom>([](int32_t, responder<fragile, boom>) { throw std::runtime_error("boom!"); });
  d.on<boom_channel>([](caf::event_based_actor*, rx<int32_t>, responder<fragile, boom_channel>) {
    throw std::runtime_error("channel boom!");
  });
  auto server = logging_to(log);
  server.root_handler = d.handler();
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server);
  caller root{pair.client.root};
  auto r = f.call(root, fragile::id<boom>(), payload{encode(std::tuple<int32_t>{1})});
  REQUIRE(r);
  CHECK(is_cancelled(r->ret));
  CHECK(log->matching("Fragile.boom threw: boom!").size() == 1);
  // The same from a handler that runs in an actor of its own.
  client<fragile> c{root};
  auto [out, in] = channel<int32_t>();
  auto r2 = c.call<boom_channel>(f.self, {in}, wait_bound);
  REQUIRE(r2);
  CHECK_FALSE(r2->is_ok());
  CHECK(log->matching("Fragile.boom_channel threw: channel boom!").size() == 1);
  // The session goes on.
  auto r3 = f.call(root, fragile::id<boom>(), payload{encode(std::tuple<int32_t>{2})});
  REQUIRE(r3);
  CHECK(log->matching("threw").size() == 3);
}

TEST_CASE("a raw call handler that throws is logged with the method id", "[actors][handler]") {
  actor_fixture f;
  auto log = std::make_shared<log_lines>();
  auto server = logging_to(log);
  server.root_handler = [](incoming_call, reply_sink) { throw std::logic_error("raw boom"); };
  auto pair = make_session_pair(f, make_memory_link_pair(), logless(), server);
  caller root{pair.client.root};
  auto r = f.call(root, 0x1234, payload{});
  REQUIRE(r);
  CHECK(is_cancelled(r->ret));
  CHECK(log->matching("0x0000000000001234 threw: raw boom").size() == 1);
}
