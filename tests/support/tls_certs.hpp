// Throwaway certificates for TLS tests (scripts/make_certs.sh), made once per test process
// in a temporary directory that is removed at exit.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "support/run_command.hpp"
#include "transport/tls.hpp"

namespace vox::test {

/// The directory holding every certificate make_certs.sh makes.
inline const std::string& cert_dir() {
  struct made {
    std::string dir;
    made() {
      char tmpl[] = "/tmp/vox-certs-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr)
        throw std::runtime_error("mkdtemp failed");
      dir = tmpl;
      auto r = run_command(VOX_MAKE_CERTS_PATH, dir);
      if (r.status != 0)
        throw std::runtime_error("make_certs.sh failed: " + r.out);
    }
    ~made() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static made certs;
  return certs.dir;
}

inline std::string pem(const std::string& name) {
  return cert_dir() + "/" + name + ".pem";
}

inline std::string key_of(const std::string& name) {
  return cert_dir() + "/" + name + ".key";
}

/// A server presenting certificate `name`; `client_ca` set: it verifies client
/// certificates against that CA (required when `require_client`).
inline std::shared_ptr<const tls_context> server_tls(const std::string& name = "server",
                                                     const std::string& client_ca = {},
                                                     bool require_client = false) {
  tls_config cfg;
  cfg.cert_file = pem(name);
  cfg.key_file = key_of(name);
  if (!client_ca.empty())
    cfg.ca_file = pem(client_ca);
  cfg.require_client_cert = require_client;
  auto ctx = tls_context::server(cfg);
  if (!ctx)
    throw std::runtime_error(describe(ctx.error()));
  return *ctx;
}

/// A client trusting `ca`, presenting certificate `name` if given.
inline std::shared_ptr<const tls_context> client_tls(const std::string& ca = "ca", const std::string& name = {}) {
  tls_config cfg;
  cfg.ca_file = pem(ca);
  if (!name.empty()) {
    cfg.cert_file = pem(name);
    cfg.key_file = key_of(name);
  }
  auto ctx = tls_context::client(cfg);
  if (!ctx)
    throw std::runtime_error(describe(ctx.error()));
  return *ctx;
}

inline link_options with_tls(std::shared_ptr<const tls_context> ctx) {
  link_options o;
  o.tls = std::move(ctx);
  return o;
}

} // namespace vox::test
