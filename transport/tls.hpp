// TLS under the framing (README "Deployment and security"): OpenSSL 3 on the same
// non-blocking sockets and I/O loops as plain links, no thread per link.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "protocol/bytes.hpp"
#include "transport/link.hpp"

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace vox {

/// The ALPN protocol a vox-caf TLS peer offers and accepts. A client that offers ALPN
/// without it is refused; one that offers none (openssl s_client) is served.
inline constexpr const char* tls_alpn = "vox";

/// What a TLS endpoint presents and trusts. Files are PEM.
struct tls_config {
  /// Our certificate chain and key: required for a server, optional for a client (which
  /// then presents it under mutual TLS).
  std::string cert_file;
  std::string key_file;
  /// Trust anchors for the peer's certificate. A client without one trusts the system
  /// store; a server needs one to verify client certificates.
  std::string ca_file;
  /// Server: refuse a client that presents no certificate verifying against `ca_file`.
  /// A server with `ca_file` but without this asks for one and verifies it if given.
  bool require_client_cert = false;
  /// Client: the name the server's certificate must carry (DNS name or IP address);
  /// empty: the host dialled.
  std::string server_name;
  /// Client: accept any server certificate, unverified. For tests against throwaway
  /// servers only: anyone on the path can then read and change the traffic.
  bool insecure_skip_verify = false;
  /// Allow TLS 1.2 too (TLS 1.3 only by default).
  bool allow_tls12 = false;
  /// Client: how long `tcp_connect`'s handshake may take. A server's handshake counts
  /// against the session's `handshake_timeout`.
  std::chrono::milliseconds handshake_timeout{10000};
};

/// An OpenSSL context made from a `tls_config`: share one per server or per client
/// configuration (put it in `link_options::tls`). Immutable once made; thread-safe.
class tls_context {
public:
  /// Fails with `errc::tls_failed` naming the file or setting that was refused.
  static caf::expected<std::shared_ptr<const tls_context>> server(const tls_config& cfg);
  static caf::expected<std::shared_ptr<const tls_context>> client(const tls_config& cfg);

  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  bool is_server() const { return server_; }
  const tls_config& config() const { return cfg_; }
  ssl_ctx_st* native() const { return ctx_; }

  /// Takes ownership of `ctx`; use `server` or `client`.
  tls_context(ssl_ctx_st* ctx, bool server, tls_config cfg) : ctx_(ctx), server_(server), cfg_(std::move(cfg)) {}

private:
  ssl_ctx_st* ctx_;
  bool server_;
  tls_config cfg_;
};

/// One TLS connection over a connected, non-blocking socket that the caller owns.
///
/// OpenSSL never touches the socket: it works on memory buffers, so that no lock is held
/// across a syscall. The caller reads ciphertext from the socket and `feed`s it, and
/// sends what `encrypt` and `take_output` give it, in the order they gave it. Every
/// OpenSSL call takes an internal lock (the I/O loop decrypts while another thread
/// encrypts); none waits for the peer except the `*_blocking` ones and `handshake`, which
/// wait in poll() without the lock.
class tls_stream {
public:
  /// A client stream checks the server's certificate against `host` (unless the context
  /// names `server_name`); a server stream ignores `host`.
  static caf::expected<std::unique_ptr<tls_stream>> make(std::shared_ptr<const tls_context> ctx, int fd,
                                                          const std::string& host);
  ~tls_stream();

  /// The outcome of one `read`.
  struct result {
    enum status_t { done, eof, want_read, failed } status;
    size_t bytes;      ///< done: how many
    caf::error error;  ///< failed: why (errc::tls_failed)
    /// OpenSSL produced output of its own (a handshake flight, an alert) or completed the
    /// handshake: the caller should flush (take_output, or encrypt what waited for it).
    bool output;
    result(status_t s = failed, size_t n = 0, caf::error e = {}, bool out = false)
      : status(s), bytes(n), error(std::move(e)), output(out) {}
  };

  /// Ciphertext read from the socket; `eof` once the socket reached its end.
  void feed(const uint8_t* data, size_t size);
  void feed_eof();
  /// One non-blocking recv from the socket, fed: what recv returned (0: the end, fed too;
  /// -1: errno says why, EAGAIN included).
  ssize_t pull();

  /// Decrypts what was fed into `dst` until it is full or nothing whole is left; the
  /// handshake, on a server, progresses here.
  result read(uint8_t* dst, size_t size);

  /// Ciphertext OpenSSL produced first (handshake, alerts), then `plain` encrypted,
  /// appended to `out`. False (and nothing of `plain` taken) while the handshake has not
  /// completed: the next read that reports `output` says when to try again.
  caf::expected<bool> encrypt(byte_span plain, byte_buffer& out);
  /// Appends ciphertext OpenSSL produced on its own (see result::output).
  void take_output(byte_buffer& out);

  /// The last read stopped because `dst` was full while whole records were left: read
  /// again without waiting for a socket event.
  bool pending() const;

  /// Client: completes the handshake, waiting for the socket until `deadline`.
  caf::error handshake(std::chrono::steady_clock::time_point deadline, const std::atomic<bool>& aborted);
  /// Before a link starts (prologue and handshake): a read or whole write that waits for
  /// the socket. 0 from read_blocking is the end of the stream.
  caf::expected<size_t> read_blocking(uint8_t* dst, size_t size, const std::atomic<bool>& aborted);
  caf::error write_blocking(byte_span plain, const std::atomic<bool>& aborted);

  /// Our close_notify alert, appended to `out` (to be sent before our FIN).
  void close_notify(byte_buffer& out);

  /// After a failed handshake, best effort and without waiting: sends OpenSSL's alert,
  /// reads what the peer sent on (so that closing does not reset the connection and
  /// destroy our answer) and, if the peer does not speak TLS, sends it a protocol_version
  /// alert, which a plain vox-caf link recognises. Nothing once the handshake completed.
  void answer_failed_handshake();

  /// The peer's identity: fills `tls`, `verified`, `subject` and `alt_names` of `peer`
  /// once the handshake completed.
  void identify(link_peer& peer) const;

private:
  tls_stream(std::shared_ptr<const tls_context> ctx, ssl_st* ssl, int fd);
  result outcome(int rc, const char* what);
  void drain_locked(byte_buffer& out);
  void shrink_locked();
  caf::error send_all(const byte_buffer& data, const std::atomic<bool>& aborted);
  caf::error fill(const std::atomic<bool>& aborted, std::chrono::steady_clock::time_point deadline);
  caf::error wait(short events, std::chrono::steady_clock::time_point deadline, const std::atomic<bool>& aborted);

  std::shared_ptr<const tls_context> ctx_;
  ssl_st* ssl_;
  bio_st* in_;  ///< ciphertext fed, owned by ssl_
  bio_st* out_; ///< ciphertext produced, owned by ssl_
  int fd_;
  bool peer_not_tls_ = false; ///< the handshake failed on bytes that are no TLS record
  bool filled_ = false;       ///< see pending()
  bool established_ = false;  ///< the handshake completed (reported once by read)
  bool eof_fed_ = false;
  /// The most bytes each BIO held since it was made: above this, a drained BIO is replaced.
  static constexpr size_t idle_buffer_limit = 1024;
  size_t in_peak_ = 0;
  size_t out_peak_ = 0;
  mutable std::mutex mtx_;
};

/// True when a link's first four bytes are the start of a TLS record (a ClientHello or an
/// alert) rather than a vox frame header: a TLS peer on a plain link.
bool looks_like_tls_record(const uint8_t* first4);

} // namespace vox
