#include "bench/tls.hpp"

#include <cstdlib>
#include <filesystem>

#include <caf/scoped_actor.hpp>

#include "actors/session_actor.hpp"
#include "transport/tcp_link.hpp"

namespace voxbench {

bench_certs::state::~state() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

caf::expected<bench_certs> bench_certs::make() {
  char tmpl[] = "/tmp/vox-bench-certs-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    return vox::make_error(vox::errc::io_error, "mkdtemp failed");
  bench_certs out;
  out.state_ = std::make_shared<state>();
  out.state_->dir = tmpl;
  auto cmd = std::string{VOX_MAKE_CERTS_PATH} + " " + out.state_->dir + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    return vox::make_error(vox::errc::io_error, "scripts/make_certs.sh failed (is openssl installed?)");
  return out;
}

caf::expected<std::shared_ptr<const vox::tls_context>> bench_certs::server() const {
  vox::tls_config cfg;
  cfg.cert_file = dir() + "/server.pem";
  cfg.key_file = dir() + "/server.key";
  return vox::tls_context::server(cfg);
}

caf::expected<std::shared_ptr<const vox::tls_context>> bench_certs::client() const {
  vox::tls_config cfg;
  cfg.ca_file = dir() + "/ca.pem";
  return vox::tls_context::client(cfg);
}

namespace {

/// One session, start to end; its error if any step failed.
caf::error one_session(caf::actor_system& sys, caf::scoped_actor& self, uint16_t port,
                       const vox::link_options& links) {
  auto lnk = vox::tcp_connect("127.0.0.1", port, links);
  if (!lnk)
    return lnk.error();
  auto s = vox::connect_session(sys, *lnk, bench_options());
  if (!s)
    return s.error();
  caf::error failed;
  vox::outgoing_call call;
  call.method_id = 1;
  call.args = make_body();
  self->request(s->root.driver, std::chrono::seconds{5}, vox::call_atom::value, std::move(call))
    .receive([](vox::call_response&) {}, [&](caf::error& e) { failed = e; });
  self->monitor(s->actor);
  caf::anon_send(s->actor, vox::stop_atom::value);
  self->receive([](caf::down_msg&) {});
  return failed;
}

} // namespace

measurement measure_session_setup(caf::actor_system& sys, uint16_t port, const vox::link_options& links, timing t) {
  caf::scoped_actor self{sys};
  auto run = [&](double seconds, uint64_t& done) -> caf::error {
    auto end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    while (clock_type::now() < end) {
      if (auto err = one_session(sys, self, port, links))
        return err;
      ++done;
    }
    return {};
  };
  uint64_t warm = 0;
  if (auto err = run(t.warmup_s, warm))
    return measurement::failed(sys.render(err));
  measurement m;
  auto start = clock_type::now();
  if (auto err = run(t.measure_s, m.ops))
    return measurement::failed(sys.render(err));
  m.seconds = seconds_since(start);
  m.ok = true;
  return m;
}

} // namespace voxbench
