// A link over a connected stream socket (TCP or Unix domain), framed by a u32-LE length.
#pragma once

#include <string>

#include "transport/link.hpp"
#include "transport/socket.hpp"
#include "transport/tls.hpp"

namespace vox {

/// Wraps a connected stream socket into a link (r[transport.stream]); the link owns `fd`
/// and closes it when destroyed. `description` is what `describe` returns.
///
/// `send` writes the length prefix and the payload with one `sendmsg`, so no small write
/// waits for an ACK; a peer that is gone yields `errc::link_closed` (never SIGPIPE).
/// `recv` fails with `errc::frame_too_large` as soon as a length prefix exceeds
/// `options.max_frame_size`, and with `errc::link_closed` when the stream ends mid-frame;
/// both failures are final. `close` shuts down our sending direction; `abort` shuts down
/// both, which wakes a blocked `recv` or `send` with `errc::closed`.
///
/// With `tls`, made over the same `fd` (which must then be non-blocking), every byte goes
/// through TLS; a server's handshake runs as its first input arrives.
link_ptr make_socket_link(unique_fd fd, std::string description, link_options options = {},
                          std::unique_ptr<tls_stream> tls = nullptr);

/// The link over a socket just connected to `host` (a client) or accepted (a server,
/// `host` unused), named "`kind` local->peer": plain, or TLS when `options.tls` is set.
/// A TLS client completes its handshake here, within the context's `handshake_timeout`,
/// and fails with `errc::tls_failed` naming why (the certificate reason, a peer that does
/// not speak TLS); a TLS server's handshake runs as its first input arrives.
caf::expected<link_ptr> make_stream_link(unique_fd fd, const std::string& kind, link_options options,
                                         const std::string& host);

} // namespace vox
