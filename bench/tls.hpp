// vox-bench: the TLS rows' certificates and the session-setup row.
#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "bench/common.hpp"
#include "transport/link.hpp"
#include "transport/tls.hpp"

namespace voxbench {

/// Throwaway certificates (scripts/make_certs.sh) in a temporary directory, removed when
/// the last copy of the returned handle goes.
class bench_certs {
public:
  static caf::expected<bench_certs> make();
  const std::string& dir() const { return state_->dir; }
  /// The server's context (certificate for 127.0.0.1) and a client's trusting the test CA.
  caf::expected<std::shared_ptr<const vox::tls_context>> server() const;
  caf::expected<std::shared_ptr<const vox::tls_context>> client() const;

private:
  struct state {
    std::string dir;
    ~state();
  };
  std::shared_ptr<state> state_;
};

/// Sessions/s set up and torn down one at a time against 127.0.0.1:`port`: connect (and
/// the TLS handshake when `links.tls` is set), the prologue and the CBOR handshake, one
/// echo call, then the session is stopped and its end awaited.
measurement measure_session_setup(caf::actor_system& sys, uint16_t port, const vox::link_options& links, timing t);

} // namespace voxbench
