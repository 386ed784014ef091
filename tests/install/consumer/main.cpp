// Uses every layer of an installed vox-caf: a typed call over a session on a memory link.
#include <cstdio>
#include <future>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/service.hpp"
#include "actors/session_actor.hpp"
#include "transport/memory_link.hpp"

using echo = vox::method<"echo", std::string(std::string)>;
using testbed = vox::service<"Testbed", echo>;

int main() {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  vox::service_dispatcher<testbed> d;
  d.on<echo>([](std::string s, vox::responder<testbed, echo> r) { r.ok(std::move(s)); });
  vox::session_options server;
  server.root_handler = d.handler();
  auto [a, b] = vox::make_memory_link_pair();
  std::promise<caf::expected<vox::session_handle>> accepted;
  std::thread t{[&, b = b] { accepted.set_value(vox::accept_session(sys, b, server)); }};
  auto client = vox::connect_session(sys, a, {});
  t.join();
  auto srv = accepted.get_future().get();
  if (!client || !srv)
    return 1;
  std::string got;
  {
    vox::client<testbed> c{vox::caller{client->root}};
    caf::scoped_actor self{sys};
    auto r = c.call<echo>(self, {"hi"}, std::chrono::seconds{5});
    got = r && r->is_ok() ? r->ok() : "<failed>";
  }
  caf::anon_send(srv->actor, vox::stop_atom::value);
  std::printf("echo(\"hi\") = \"%s\", method id %016llx\n", got.c_str(),
              static_cast<unsigned long long>(testbed::id<echo>()));
  // The id is the one testbed-service.md lists for Testbed.echo.
  return got == "hi" && testbed::id<echo>() == 0x880bc4eee23574beull ? 0 : 1;
}
