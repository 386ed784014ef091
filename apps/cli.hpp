// Small command-line helpers shared by the vox programs: strict option parsing (a typo,
// a missing value or a malformed number is a usage error naming the option, exit status
// 2, never an exception, a silently truncated number or an ignored flag) and waiting for
// SIGTERM/SIGINT without a signal handler.
#pragma once

#include <charconv>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actors/handles.hpp"
#include "transport/compression.hpp"
#include "transport/tls.hpp"

namespace vox::cli {

/// The whole of `text` as a number in [min, max] (no sign for unsigned types, no
/// trailing characters, no whitespace).
template <class T>
std::optional<T> number(const std::string& text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || value < min || value > max)
    return std::nullopt;
  return value;
}

/// The programs' keepalive unless `--keepalive` says otherwise: a Ping every 10 s, well
/// inside the 30 s after which some peers drop a silent session; the Pong timeout is
/// three intervals, as `--keepalive MS` sets it.
inline const keepalive_options default_keepalive{std::chrono::seconds{10}, std::chrono::seconds{30}};

/// "HOST:PORT" (the last colon splits, so "[::1]"-less IPv6 text like "::1:80" works too).
bool split_address(const std::string& addr, std::string& host, uint16_t& port);

/// The security flags of a program (README "Deployment and security").
struct security_flags {
  bool tls = false;           ///< --tls: a client using the system's trusted CAs
  std::string cert;           ///< --tls-cert FILE
  std::string key;            ///< --tls-key FILE
  std::string ca;             ///< --tls-ca FILE
  std::string server_name;    ///< --tls-server-name NAME (client)
  bool require_client_cert = false; ///< --tls-require-client-cert (server)
  bool insecure = false;      ///< --tls-insecure-skip-verify (client)
  std::string auth_token;     ///< --auth-token TOKEN

  /// Any TLS flag was given.
  bool wants_tls() const { return tls || !cert.empty() || !key.empty() || !ca.empty() || insecure; }
};

/// The TLS context `flags` ask for as a server or a client: none when no TLS flag was
/// given; an error naming the file or flag that did not work.
caf::expected<std::shared_ptr<const tls_context>> tls_context_of(const security_flags& flags, bool server);

/// Options of one program (or one of its modes), each bound to a variable that holds its
/// default. `parse` sets the variables of the options given and checks everything:
///
///   cli::options opts{"vox-echo serve", usage_text};
///   opts.number("--port", port, 0, 65535).text("--host", host);
///   if (auto status = opts.parse(argc, argv, 2)) return *status;
///
/// Accepted forms are `--name value` and `--name=value`; a value may not itself start with
/// "--" (so `--port --keepalive 5` reports --port's missing value instead of swallowing the
/// next option).
class options {
public:
  options(std::string program, std::string usage);

  options& text(const char* name, std::string& out);
  options& flag(const char* name, bool& out);
  /// "HOST:PORT" into `host` and `port`.
  options& address(const char* name, std::string& host, uint16_t& port);
  /// One of `choices` (written "a|b|c" in errors); `set` receives the index chosen.
  options& choice(const char* name, std::vector<std::string> choices, std::function<void(size_t)> set);
  /// Keepalive interval in ms (0: off); the pong timeout is three intervals.
  options& keepalive(const char* name, std::optional<keepalive_options>& out);
  /// `--compress off|prefer|require` and `--compress-level N` (zstd's levels, -7 to 22).
  options& compression(compression_options& out);
  /// `--tls-cert`, `--tls-key`, `--tls-ca`, `--auth-token` and, for a server,
  /// `--tls-require-client-cert`, for a client `--tls`, `--tls-server-name` and
  /// `--tls-insecure-skip-verify`.
  options& security(security_flags& out, bool server);

  template <class T>
  options& number(const char* name, T& out, T min, T max) {
    auto range = "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    return add(name, true, [&out, min, max, range](const std::string& v) -> std::string {
      auto n = cli::number<T>(v, min, max);
      if (!n)
        return "'" + v + "' is not " + range;
      out = *n;
      return {};
    });
  }

  /// Seconds as a decimal number in [min, max].
  options& seconds(const char* name, double& out, double min, double max);

  /// The option must be given.
  options& required(const char* name);

  /// Bare (non-option) arguments, at most `max` of them, in order.
  options& positional(std::vector<std::string>& out, size_t max);

  /// Parses argv[first, argc). nullopt: carry on. Otherwise the program's exit status:
  /// 0 after `--help`/`-h` (usage on stdout), 2 after an error (one line naming the option,
  /// then the usage, on stderr).
  std::optional<int> parse(int argc, char** argv, int first = 1);

  /// True if `name` was on the command line.
  bool given(const char* name) const;

  /// Prints "program: message" and the usage on stderr; returns 2. For checks that span
  /// options (e.g. two that exclude each other).
  int error(const std::string& message) const;

private:
  /// Returns an empty string if the value was taken, else why not.
  using setter = std::function<std::string(const std::string&)>;
  struct option {
    std::string name;
    bool takes_value;
    setter set;
    bool required = false;
    bool seen = false;
  };

  options& add(const char* name, bool takes_value, setter set);
  option* find(const std::string& name);
  const option* find(const std::string& name) const;

  std::string program_;
  std::string usage_;
  std::vector<option> options_;
  std::vector<std::string>* positional_ = nullptr;
  size_t max_positional_ = 0;
};

/// Blocks SIGTERM and SIGINT in the calling thread. Call it in main() before any thread
/// exists (the actor system's included) so that every thread inherits the mask and the
/// signals wait for `wait_for_stop_signal`.
void block_stop_signals();

/// Waits for SIGTERM or SIGINT (blocked by block_stop_signals): no handler, no lost
/// wake-up between a flag check and pause(), no signal landing on a CAF thread.
int wait_for_stop_signal();

} // namespace vox::cli
