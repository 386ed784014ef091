#include "apps/cli.hpp"

#include <cstdio>
#include <pthread.h>

namespace vox::cli {

bool split_address(const std::string& addr, std::string& host, uint16_t& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  auto p = cli::number<uint16_t>(addr.substr(colon + 1), 0, 65535);
  if (!p)
    return false;
  host = addr.substr(0, colon);
  port = *p;
  return true;
}

options::options(std::string program, std::string usage) : program_(std::move(program)), usage_(std::move(usage)) {
}

options& options::add(const char* name, bool takes_value, setter set) {
  options_.push_back(option{name, takes_value, std::move(set)});
  return *this;
}

options& options::text(const char* name, std::string& out) {
  return add(name, true, [&out](const std::string& v) {
    out = v;
    return std::string{};
  });
}

options& options::flag(const char* name, bool& out) {
  return add(name, false, [&out](const std::string&) {
    out = true;
    return std::string{};
  });
}

options& options::address(const char* name, std::string& host, uint16_t& port) {
  return add(name, true, [&host, &port](const std::string& v) -> std::string {
    if (!split_address(v, host, port))
      return "'" + v + "' is not HOST:PORT (a port in [0, 65535])";
    return {};
  });
}

options& options::choice(const char* name, std::vector<std::string> choices, std::function<void(size_t)> set) {
  return add(name, true, [choices = std::move(choices), set = std::move(set)](const std::string& v) -> std::string {
    std::string all;
    for (size_t i = 0; i < choices.size(); ++i) {
      if (choices[i] == v) {
        set(i);
        return {};
      }
      all += (i == 0 ? "" : "|") + choices[i];
    }
    return "'" + v + "' is not one of " + all;
  });
}

options& options::compression(compression_options& out) {
  std::vector<std::string> names;
  for (auto mode : compression_modes)
    names.emplace_back(to_string(mode));
  choice("--compress", std::move(names), [&out](size_t i) { out.mode = compression_modes[i]; });
  return number<int>("--compress-level", out.level, -7, 22);
}

options& options::security(security_flags& out, bool server) {
  text("--tls-cert", out.cert).text("--tls-key", out.key).text("--tls-ca", out.ca).text("--auth-token", out.auth_token);
  if (server)
    return flag("--tls-require-client-cert", out.require_client_cert);
  return flag("--tls", out.tls).text("--tls-server-name", out.server_name).flag("--tls-insecure-skip-verify", out.insecure);
}

caf::expected<std::shared_ptr<const tls_context>> tls_context_of(const security_flags& flags, bool server) {
  if (!flags.wants_tls() && !flags.require_client_cert)
    return std::shared_ptr<const tls_context>{};
  tls_config cfg;
  cfg.cert_file = flags.cert;
  cfg.key_file = flags.key;
  cfg.ca_file = flags.ca;
  cfg.server_name = flags.server_name;
  cfg.require_client_cert = flags.require_client_cert;
  cfg.insecure_skip_verify = flags.insecure;
  if (flags.insecure)
    std::fprintf(stderr, "WARNING: --tls-insecure-skip-verify: the server's certificate is not checked;"
                         " anyone on the path can read and change this traffic\n");
  return server ? tls_context::server(cfg) : tls_context::client(cfg);
}

options& options::keepalive(const char* name, std::optional<keepalive_options>& out) {
  return add(name, true, [&out](const std::string& v) -> std::string {
    auto ms = cli::number<uint32_t>(v, 0, 3'600'000);
    if (!ms)
      return "'" + v + "' is not a number of milliseconds in [0, 3600000]";
    if (*ms == 0)
      out.reset();
    else
      out = keepalive_options{std::chrono::milliseconds{*ms}, std::chrono::milliseconds{3 * int64_t{*ms}}};
    return {};
  });
}

options& options::seconds(const char* name, double& out, double min, double max) {
  return add(name, true, [&out, min, max](const std::string& v) -> std::string {
    auto s = cli::number<double>(v, min, max);
    if (!s) {
      char range[96];
      std::snprintf(range, sizeof range, "a number of seconds in [%g, %g]", min, max);
      return "'" + v + "' is not " + range;
    }
    out = *s;
    return {};
  });
}

options& options::required(const char* name) {
  if (auto* o = find(name))
    o->required = true;
  return *this;
}

options& options::positional(std::vector<std::string>& out, size_t max) {
  positional_ = &out;
  max_positional_ = max;
  return *this;
}

options::option* options::find(const std::string& name) {
  for (auto& o : options_)
    if (o.name == name)
      return &o;
  return nullptr;
}

const options::option* options::find(const std::string& name) const {
  return const_cast<options*>(this)->find(name);
}

bool options::given(const char* name) const {
  const auto* o = find(name);
  return o != nullptr && o->seen;
}

int options::error(const std::string& message) const {
  std::fprintf(stderr, "%s: %s\n%s", program_.c_str(), message.c_str(), usage_.c_str());
  return 2;
}

std::optional<int> options::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage_.c_str(), stdout);
      return 0;
    }
    if (a.rfind("-", 0) != 0 || a == "-") {
      if (positional_ == nullptr || positional_->size() >= max_positional_)
        return error("unexpected argument '" + a + "'");
      positional_->push_back(a);
      continue;
    }
    std::optional<std::string> inline_value;
    if (auto eq = a.find('='); eq != std::string::npos) {
      inline_value = a.substr(eq + 1);
      a.resize(eq);
    }
    auto* o = find(a);
    if (o == nullptr)
      return error("unknown option " + a);
    if (!o->takes_value) {
      if (inline_value)
        return error(a + " takes no value");
      o->set({});
    } else {
      std::string value;
      if (inline_value)
        value = *inline_value;
      else if (i + 1 < argc && std::string_view{argv[i + 1]}.rfind("--", 0) != 0)
        value = argv[++i];
      else
        return error(a + " needs a value");
      if (auto why = o->set(value); !why.empty())
        return error(a + ": " + why);
    }
    o->seen = true;
  }
  for (const auto& o : options_)
    if (o.required && !o.seen)
      return error(o.name + " is required");
  return std::nullopt;
}

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

} // namespace

void block_stop_signals() {
  auto set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_stop_signal() {
  auto set = stop_signals();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

} // namespace vox::cli
