// A link carries whole payloads between two peers: the lowest layer of vox.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <optional>
#include <string>
#include <vector>

#include <chrono>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "protocol/bytes.hpp"
#include "protocol/error.hpp"

namespace vox {

class tls_context;

/// Limits every link enforces on what it receives.
struct link_options {
  /// Largest payload accepted from the peer; larger frames fail with
  /// `errc::frame_too_large` before anything is allocated for them.
  uint32_t max_frame_size = 16u * 1024 * 1024;
  /// Started links: the most bytes queued for a peer that does not read. A send that
  /// would pass it fails the link with `errc::backpressure` instead of growing the queue.
  size_t max_outbound_bytes = 8u * 1024 * 1024;
  /// Started links: output that makes no progress for this long fails the link with
  /// `errc::backpressure` (a peer that stopped reading).
  std::chrono::milliseconds stall_timeout{30000};
  /// Started links, soft backpressure: above this many queued bytes the link reports
  /// `congested()`, and drivers hold new calls and channel credit instead of queueing
  /// more, until the queue has drained to `low_water_bytes`. Keep it well below
  /// `max_outbound_bytes`, which is where a link gives up.
  size_t high_water_bytes = 1024 * 1024;
  size_t low_water_bytes = 256 * 1024;
  /// TLS under the framing (transport/tls.hpp): `tcp_connect` and `unix_connect` run a
  /// client handshake with it, a listener's accepted links a server one. None: plain.
  std::shared_ptr<const tls_context> tls;
};

class io_reactor;

/// Who is at the other end of a link, as far as the transport can tell: what an
/// authorization decision may rest on (README "Deployment and security").
struct link_peer {
  /// The peer's address: "127.0.0.1:41234", "[::1]:41234", a Unix socket's path, or
  /// empty when the transport has none (a memory link).
  std::string address;
  /// The link is TLS (the handshake completed).
  bool tls = false;
  /// TLS: the peer presented a certificate that verified against our trust anchors (a
  /// client under mutual TLS; a server, always, unless verification was turned off).
  bool verified = false;
  /// TLS, verified: the certificate's subject, one line (RFC 2253: "CN=client,O=vox").
  std::string subject;
  /// TLS, verified: its subjectAltNames, "DNS:name" or "IP:address".
  std::vector<std::string> alt_names;
};

/// Receives what a started link reads. Calls for one link never overlap, and `on_end`
/// comes last, once.
class link_receiver {
public:
  virtual ~link_receiver() = default;
  /// One payload, valid only during the call. `ctx` is the execution unit of the I/O
  /// thread that read it (nullptr when there is none), so that an actor this wakes up can
  /// run on that thread.
  virtual void on_frame(byte_span payload, caf::execution_unit* ctx) = 0;
  /// The input ended: an empty `reason` is a clean end of stream at a frame boundary.
  virtual void on_end(caf::error reason, caf::execution_unit* ctx) = 0;
};

/// A bidirectional, ordered, reliable channel of whole payloads (r[link]).
///
/// A link starts in blocking mode, used for the transport prologue and the handshake;
/// `start` switches it to event-driven mode for the session.
///
/// Threading contract: `send` may be called from any thread (calls are serialised
/// internally and each payload is written whole); `recv` must be called by one
/// thread at a time; `close` and `abort` may be called from any thread at any time.
class link {
public:
  virtual ~link() = default;

  /// Sends one payload (empty payloads are legal, r[link.message.empty]). Before `start`
  /// it blocks until the payload is handed to the transport; after `start` it never
  /// blocks: the payload is queued and written by whoever holds the write turn, together
  /// with everything queued meanwhile. Fails with `errc::closed` after `close`/`abort`,
  /// with `errc::io_error`/`errc::link_closed` when the transport broke, and with
  /// `errc::backpressure` once the peer stopped draining its queue (which ends the link).
  ///
  /// `ctx` is the execution unit of the sending thread when an actor sends (its
  /// `context()`), else nullptr. A link that delivers on the sender's thread (memory)
  /// hands it to the receiver, so that the actor the payload wakes is scheduled on the
  /// sender's worker rather than on another one that must be woken first.
  caf::expected<void> send(byte_span payload, caf::execution_unit* ctx = nullptr) { return do_send(payload, ctx); }

  /// Sends several payloads, in order, as `send` would one by one; a started socket link
  /// queues them all before it writes, so they share one write. Stops at the first error.
  caf::expected<void> send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx = nullptr) {
    return do_send_many(payloads, ctx);
  }

  /// True while more than `link_options::high_water_bytes` wait to be written (until the
  /// queue drains to `low_water_bytes`). A link that cannot fall behind (memory) never is.
  /// Sending still works while congested: it is a hint to slow down, not a refusal.
  virtual bool congested() const { return false; }

  /// Calls `fn` once the link is no longer congested, or has failed: at once on the
  /// calling thread if it is not congested now, otherwise later from the thread whose
  /// write drained the queue, with the link's send lock held, so `fn` must only hand
  /// work elsewhere (send an actor a message) and never call back into the link.
  virtual void when_drained(std::function<void()> fn) { fn(); }

  /// Receives the next payload. Blocks until one arrives. Returns `std::nullopt` on a clean
  /// end of stream (the peer closed at a frame boundary, r[link.rx.eof]); an error when the
  /// stream broke mid-frame, a frame exceeds the limit, or the link was aborted locally.
  virtual caf::expected<std::optional<byte_buffer>> recv() = 0;

  /// Switches to event-driven mode: from now on every payload goes to `receiver` (socket
  /// links read on a thread of `io`; a memory link delivers on the sender's thread and
  /// needs no `io`), and `recv` must not be called again. Payloads that arrived before are
  /// delivered first. The link stays alive until its input ends (`abort` ends it, and so
  /// does the stop of the reactor's threads once nothing uses them: errc::link_closed).
  virtual void start(std::shared_ptr<link_receiver> receiver, const std::shared_ptr<io_reactor>& io) = 0;

  /// Graceful close of our sending direction: payloads already sent are delivered, then
  /// the peer's `recv` sees end of stream. Receiving continues to work. A started link
  /// keeps its reactor running until what it queued has gone out, not while it then waits
  /// for the peer's end of stream: when nothing else uses the reactor, that wait is cut.
  virtual void close() = 0;

  /// Tears the link down in both directions and wakes a blocked `recv` (which then fails
  /// with `errc::closed`). Idempotent. Used for shutdown and for handshake timeouts.
  virtual void abort() = 0;

  /// A short human-readable description, e.g. "tcp 127.0.0.1:5000->127.0.0.1:41234".
  virtual std::string describe() const = 0;

  /// The largest payload this link accepts from the peer (`link_options::max_frame_size`).
  virtual uint32_t max_frame_size() const { return link_options{}.max_frame_size; }

  /// Who is at the other end (address; TLS identity once its handshake completed).
  virtual link_peer peer() const { return {}; }

  /// Whether compressing what crosses this link can pay: false for a memory link, which
  /// copies nothing over any wire.
  virtual bool compressible() const { return true; }

  /// Drops the framing, both ways, for a layer that frames its own records (a compressed
  /// link, whose records are smaller than a u32 prefix: transport/zstd_link.hpp). From
  /// then on a payload sent goes out as its bytes alone, and the receiver (or `recv`) gets
  /// the bytes that arrive, in order, cut anywhere. Call it between two frames: before
  /// `start`, or from the receiver's `on_frame` (the loop then hands it the rest of its
  /// buffer as bytes). False, and nothing changes, for a link that is not a byte stream.
  virtual bool enter_stream_mode() { return false; }

protected:
  /// What `send` does (same contract).
  virtual caf::expected<void> do_send(byte_span payload, caf::execution_unit* ctx) = 0;
  /// What `send_many` does; by default `do_send` for each payload.
  virtual caf::expected<void> do_send_many(std::span<const byte_span> payloads, caf::execution_unit* ctx) {
    for (auto p : payloads)
      if (auto sent = do_send(p, ctx); !sent)
        return sent;
    return {};
  }
};

using link_ptr = std::shared_ptr<link>;

} // namespace vox
