#include "transport/tls.hpp"

#include <algorithm>
#include <array>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "transport/socket.hpp"

namespace vox {

namespace {

/// The oldest error OpenSSL queued on this thread, as its reason text, and clears the
/// queue (it is per thread: a stale entry would be blamed on the next call).
std::string take_ssl_reason() {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0)
    return {};
  if (const char* reason = ERR_reason_error_string(first))
    return reason;
  char buf[256];
  ERR_error_string_n(first, buf, sizeof(buf));
  return buf;
}

caf::error context_error(const std::string& what) {
  auto reason = take_ssl_reason();
  return make_error(errc::tls_failed, what + (reason.empty() ? "" : ": " + reason));
}

/// What a user should check when OpenSSL gives `reason`: the peer's TLS refusals arrive
/// as alerts whose names are terse.
bool not_tls(const std::string& reason) {
  auto has = [&](const char* s) { return reason.find(s) != std::string::npos; };
  return has("wrong version number") || has("packet length too long") || has("record layer failure")
         || has("http request");
}

std::string hint(const std::string& reason) {
  auto has = [&](const char* s) { return reason.find(s) != std::string::npos; };
  if (not_tls(reason))
    return " (the peer does not speak TLS: is it a plain port?)";
  if (has("certificate required"))
    return " (the server requires a client certificate)";
  if (has("unknown ca"))
    return " (the peer does not trust the CA that signed our certificate)";
  if (has("no application protocol"))
    return std::string{" (the peer does not offer ALPN \""} + tls_alpn + "\")";
  if (has("unexpected eof"))
    return " (the peer closed the connection during the TLS handshake: does it speak TLS?)";
  return {};
}

bool is_ip_literal(const std::string& host) {
  in6_addr v6;
  in_addr v4;
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char ours[] = {3, 'v', 'o', 'x'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof(ours), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

caf::expected<std::shared_ptr<const tls_context>> make_context(const tls_config& cfg, bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr)
    return context_error("cannot create a TLS context");
  struct guard { // frees ctx on every early return below
    SSL_CTX* ctx;
    bool armed = true;
    ~guard() {
      if (armed)
        SSL_CTX_free(ctx);
    }
  } g{ctx};
  SSL_CTX_set_min_proto_version(ctx, cfg.allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  // Renegotiation buys an attacker a handshake's CPU per record; truncation is caught by
  // the framing (a stream that ends mid-frame is an error), as on plain TCP.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  // Partial writes fit the link's write turn (it retries the rest on EPOLLOUT); released
  // buffers keep an idle TLS link at a few KiB instead of ~34 KiB.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                          | SSL_MODE_RELEASE_BUFFERS);
  // Without read-ahead every record costs two recv calls (its header, then its body).
  SSL_CTX_set_read_ahead(ctx, 1);
  if (server && (cfg.cert_file.empty() || cfg.key_file.empty()))
    return make_error(errc::tls_failed, "a TLS server needs a certificate and a key file");
  if (!cfg.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file.c_str()) != 1)
      return context_error("cannot load the TLS certificate " + cfg.cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, (cfg.key_file.empty() ? cfg.cert_file : cfg.key_file).c_str(),
                                    SSL_FILETYPE_PEM) != 1)
      return context_error("cannot load the TLS key " + cfg.key_file);
    if (SSL_CTX_check_private_key(ctx) != 1)
      return context_error("the TLS key " + cfg.key_file + " does not match the certificate " + cfg.cert_file);
  }
  if (!cfg.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1)
      return context_error("cannot load the TLS CA file " + cfg.ca_file);
  } else if (!server && SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return context_error("cannot load the system's trusted CAs");
  }
  if (server) {
    if (cfg.require_client_cert && cfg.ca_file.empty())
      return make_error(errc::tls_failed, "requiring client certificates needs a CA file to verify them");
    int mode = SSL_VERIFY_NONE;
    if (!cfg.ca_file.empty()) {
      mode = SSL_VERIFY_PEER | (cfg.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
      SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(cfg.ca_file.c_str()));
    }
    SSL_CTX_set_verify(ctx, mode, nullptr);
    // We never resume TLS sessions (vox resumes its own): tickets would only cost bytes.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, cfg.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
    static const unsigned char ours[] = {3, 'v', 'o', 'x'};
    SSL_CTX_set_alpn_protos(ctx, ours, sizeof(ours));
  }
  ERR_clear_error();
  g.armed = false;
  return std::shared_ptr<const tls_context>{std::make_shared<tls_context>(ctx, server, cfg)};
}

} // namespace

caf::expected<std::shared_ptr<const tls_context>> tls_context::server(const tls_config& cfg) {
  return make_context(cfg, true);
}

caf::expected<std::shared_ptr<const tls_context>> tls_context::client(const tls_config& cfg) {
  return make_context(cfg, false);
}

tls_context::~tls_context() {
  SSL_CTX_free(ctx_);
}

// -- tls_stream --

namespace {

/// Where a thread's socket reads land before they are fed to OpenSSL: one per thread
/// (I/O loops, and threads in a blocking read), none per link.
uint8_t* raw_buffer() {
  thread_local std::array<uint8_t, 64 * 1024> buf;
  return buf.data();
}
constexpr size_t raw_buffer_size = 64 * 1024;

} // namespace

caf::expected<std::unique_ptr<tls_stream>> tls_stream::make(std::shared_ptr<const tls_context> ctx, int fd,
                                                             const std::string& host) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx->native());
  if (ssl == nullptr)
    return context_error("cannot create a TLS connection");
  std::unique_ptr<tls_stream> stream{new tls_stream(ctx, ssl, fd)};
  if (stream->in_ == nullptr || stream->out_ == nullptr)
    return context_error("cannot create the TLS buffers");
  if (ctx->is_server()) {
    SSL_set_accept_state(ssl);
    return stream;
  }
  SSL_set_connect_state(ssl);
  const auto& name = ctx->config().server_name.empty() ? host : ctx->config().server_name;
  if (!ctx->config().insecure_skip_verify) {
    int ok = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
                                 : SSL_set1_host(ssl, name.c_str());
    if (ok != 1)
      return context_error("cannot check the server's certificate against \"" + name + "\"");
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  // SNI carries host names only (RFC 6066 3).
  if (!is_ip_literal(name) && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
    return context_error("cannot set the TLS server name \"" + name + "\"");
  return stream;
}

tls_stream::tls_stream(std::shared_ptr<const tls_context> ctx, ssl_st* ssl, int fd)
  : ctx_(std::move(ctx)), ssl_(ssl), in_(BIO_new(BIO_s_mem())), out_(BIO_new(BIO_s_mem())), fd_(fd) {
  if (in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    return;
  }
  BIO_set_mem_eof_return(in_, -1); // empty means "more to come" until feed_eof
  SSL_set_bio(ssl_, in_, out_);
}

tls_stream::~tls_stream() {
  SSL_free(ssl_); // frees both BIOs
}

tls_stream::result tls_stream::outcome(int rc, const char* what) {
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: // never with memory BIOs; treated as "needs more input"
      return {result::want_read};
    case SSL_ERROR_ZERO_RETURN:
      return {result::eof};
    case SSL_ERROR_SYSCALL: {
      auto reason = take_ssl_reason();
      if (reason.empty())
        return {result::eof}; // the fed stream ended (SSL_OP_IGNORE_UNEXPECTED_EOF)
      return {result::failed, 0, make_error(errc::tls_failed, std::string{"TLS "} + what + " failed: " + reason)};
    }
    default: {
      auto reason = take_ssl_reason();
      auto verify = SSL_get_verify_result(ssl_);
      std::string text = std::string{"TLS "} + what + " failed: ";
      if (verify != X509_V_OK && SSL_get_verify_mode(ssl_) != SSL_VERIFY_NONE)
        text += std::string{ctx_->is_server() ? "the client's" : "the server's"} + " certificate did not verify: "
                + X509_verify_cert_error_string(verify);
      else
        text += (reason.empty() ? "unknown error" : reason) + hint(reason);
      peer_not_tls_ = not_tls(reason);
      return {result::failed, 0, make_error(errc::tls_failed, std::move(text))};
    }
  }
}

void tls_stream::feed(const uint8_t* data, size_t size) {
  std::lock_guard<std::mutex> guard{mtx_};
  BIO_write(in_, data, static_cast<int>(size));
  in_peak_ = std::max(in_peak_, BIO_ctrl_pending(in_));
}

void tls_stream::feed_eof() {
  std::lock_guard<std::mutex> guard{mtx_};
  eof_fed_ = true;
  BIO_set_mem_eof_return(in_, 0);
}

void tls_stream::shrink_locked() {
  // A memory BIO keeps the largest buffer it ever held: after a burst, an idle link would
  // pin it. Fresh (empty) BIOs instead, once a large one has drained.
  if (in_peak_ > idle_buffer_limit && BIO_ctrl_pending(in_) == 0) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      BIO_set_mem_eof_return(fresh, eof_fed_ ? 0 : -1);
      SSL_set0_rbio(ssl_, fresh); // frees the old one
      in_ = fresh;
      in_peak_ = 0;
    }
  }
  if (out_peak_ > idle_buffer_limit && BIO_ctrl_pending(out_) == 0) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      SSL_set0_wbio(ssl_, fresh);
      out_ = fresh;
      out_peak_ = 0;
    }
  }
}

tls_stream::result tls_stream::read(uint8_t* dst, size_t size) {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t total = 0;
  filled_ = false;
  result out{result::done};
  // Several records per call: a burst of small frames costs one event, as on plain TCP.
  while (total < size) {
    ERR_clear_error();
    size_t n = 0;
    if (SSL_read_ex(ssl_, dst + total, size - total, &n) == 1) {
      total += n;
      continue;
    }
    out = outcome(0, SSL_is_init_finished(ssl_) ? "read" : "handshake");
    break;
  }
  bool output = BIO_ctrl_pending(out_) > 0;
  if (!established_ && SSL_is_init_finished(ssl_)) {
    established_ = true;
    output = true; // plaintext that waited for the handshake may go now
  }
  shrink_locked();
  if (out.status == result::failed)
    return {result::failed, 0, std::move(out.error), output};
  if (total > 0) {
    // Stopped by a full `dst` with input left: no socket event will say so.
    filled_ = total == size && (SSL_pending(ssl_) > 0 || BIO_ctrl_pending(in_) > 0);
    return {result::done, total, {}, output};
  }
  out.output = output;
  return out;
}

void tls_stream::drain_locked(byte_buffer& out) {
  auto pending = BIO_ctrl_pending(out_);
  if (pending == 0)
    return;
  out_peak_ = std::max(out_peak_, pending);
  auto at = out.size();
  out.resize(at + pending);
  auto n = BIO_read(out_, out.data() + at, static_cast<int>(pending));
  out.resize(at + static_cast<size_t>(std::max(n, 0)));
  shrink_locked();
}

caf::expected<bool> tls_stream::encrypt(byte_span plain, byte_buffer& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  drain_locked(out);
  if (!SSL_is_init_finished(ssl_))
    return !plain.empty() ? false : true;
  size_t done = 0;
  while (done < plain.size()) {
    ERR_clear_error();
    size_t n = 0;
    if (SSL_write_ex(ssl_, plain.data() + done, plain.size() - done, &n) != 1) {
      auto r = outcome(0, "write");
      if (r.status == result::failed)
        return std::move(r.error);
      return make_error(errc::tls_failed, "TLS write failed: the connection is shut down");
    }
    done += n;
  }
  drain_locked(out);
  return true;
}

void tls_stream::take_output(byte_buffer& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  drain_locked(out);
}

bool tls_stream::pending() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return filled_;
}

caf::error tls_stream::wait(short events, std::chrono::steady_clock::time_point deadline,
                            const std::atomic<bool>& aborted) {
  for (;;) {
    int timeout = -1;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return make_error(errc::timeout, "the TLS handshake did not complete in time");
      timeout = static_cast<int>(left.count());
    }
    pollfd pfd{fd_, events, 0};
    int rc = ::poll(&pfd, 1, timeout);
    if (aborted.load())
      return make_error(errc::closed, "TLS link aborted locally");
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0)
      return make_system_error(errc::io_error, "poll on a TLS socket failed", errno);
    if (rc > 0)
      return {};
  }
}

caf::error tls_stream::send_all(const byte_buffer& data, const std::atomic<bool>& aborted) {
  size_t done = 0;
  while (done < data.size()) {
    auto n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto err = wait(POLLOUT, std::chrono::steady_clock::time_point::max(), aborted))
        return err;
    } else if (n < 0 && errno != EINTR) {
      return make_system_error(errno == EPIPE || errno == ECONNRESET ? errc::link_closed : errc::io_error,
                               "TLS send failed", errno);
    }
  }
  return {};
}

ssize_t tls_stream::pull() {
  auto n = ::recv(fd_, raw_buffer(), raw_buffer_size, MSG_DONTWAIT);
  if (n > 0)
    feed(raw_buffer(), static_cast<size_t>(n));
  else if (n == 0)
    feed_eof();
  return n;
}

caf::error tls_stream::fill(const std::atomic<bool>& aborted, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (pull() >= 0)
      return {};
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return make_system_error(errno == ECONNRESET ? errc::link_closed : errc::io_error, "TLS recv failed", errno);
    if (auto err = wait(POLLIN, deadline, aborted))
      return err;
  }
}

caf::error tls_stream::handshake(std::chrono::steady_clock::time_point deadline, const std::atomic<bool>& aborted) {
  for (;;) {
    result out;
    byte_buffer flight;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      ERR_clear_error();
      int rc = SSL_do_handshake(ssl_);
      drain_locked(flight);
      out = rc == 1 ? result{result::done} : outcome(rc, "handshake");
    }
    if (auto err = send_all(flight, aborted))
      return err;
    switch (out.status) {
      case result::done:
        return {};
      case result::want_read:
        if (auto err = fill(aborted, deadline))
          return err;
        break;
      case result::eof:
        return make_error(errc::tls_failed, "TLS handshake failed: the peer closed the connection"
                                            " (does it speak TLS?)");
      default:
        return out.error;
    }
  }
}

caf::expected<size_t> tls_stream::read_blocking(uint8_t* dst, size_t size, const std::atomic<bool>& aborted) {
  for (;;) {
    auto out = read(dst, size);
    if (out.output) {
      byte_buffer flight;
      take_output(flight);
      if (auto err = send_all(flight, aborted))
        return err;
    }
    switch (out.status) {
      case result::done:
        return out.bytes;
      case result::eof:
        return size_t{0};
      case result::failed:
        answer_failed_handshake();
        return out.error;
      default:
        if (auto err = fill(aborted, std::chrono::steady_clock::time_point::max()))
          return err;
    }
  }
}

caf::error tls_stream::write_blocking(byte_span plain, const std::atomic<bool>& aborted) {
  byte_buffer cipher;
  auto done = encrypt(plain, cipher);
  if (!done)
    return done.error();
  if (!*done)
    return make_error(errc::tls_failed, "TLS write before the handshake completed");
  return send_all(cipher, aborted);
}

void tls_stream::close_notify(byte_buffer& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_))
    SSL_shutdown(ssl_);
  ERR_clear_error();
  drain_locked(out);
}

void tls_stream::answer_failed_handshake() {
  byte_buffer alert;
  bool refuse;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (established_)
      return;
    drain_locked(alert);
    refuse = peer_not_tls_;
  }
  if (!alert.empty())
    [[maybe_unused]] auto n = ::send(fd_, alert.data(), alert.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  // A peer that is not speaking TLS (a plain vox client) may have sent more than we read:
  // closing on unread bytes would reset the connection and destroy our alert.
  uint8_t sink[4096];
  for (int i = 0; i < 16 && ::recv(fd_, sink, sizeof(sink), MSG_DONTWAIT) > 0; ++i) {
  }
  if (refuse) {
    // OpenSSL answers no alert to bytes that are no TLS record; a fatal protocol_version
    // alert tells the peer (a plain vox-caf link reports "the peer speaks TLS").
    static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46};
    [[maybe_unused]] auto n = ::send(fd_, alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
}

void tls_stream::identify(link_peer& peer) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!SSL_is_init_finished(ssl_))
    return;
  peer.tls = true;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr || SSL_get_verify_mode(ssl_) == SSL_VERIFY_NONE || SSL_get_verify_result(ssl_) != X509_V_OK)
    return;
  peer.verified = true;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    auto len = BIO_get_mem_data(bio, &data);
    peer.subject.assign(data, static_cast<size_t>(len));
    BIO_free(bio);
  }
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr)
    return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const auto* s = name->d.dNSName;
      peer.alt_names.push_back("DNS:" + std::string{reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                                    static_cast<size_t>(ASN1_STRING_length(s))});
    } else if (name->type == GEN_IPADD) {
      const auto* s = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      if ((ASN1_STRING_length(s) == 4 || ASN1_STRING_length(s) == 16)
          && ::inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof(text)) != nullptr)
        peer.alt_names.push_back(std::string{"IP:"} + text);
    }
  }
  GENERAL_NAMES_free(names);
}

bool looks_like_tls_record(const uint8_t* first4) {
  // A record's content type (handshake 22, alert 21), then major version 3 and a minor
  // version of at most 4: as a vox length prefix that would be a frame of tens of MiB.
  return (first4[0] == 0x16 || first4[0] == 0x15) && first4[1] == 0x03 && first4[2] <= 0x04;
}

} // namespace vox
