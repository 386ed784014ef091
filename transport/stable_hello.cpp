#include "transport/stable_hello.hpp"

#include "protocol/error.hpp"
#include "transport/handshake_exchange.hpp"

namespace vox {

namespace {

/// Sends `hello` and reads the acceptor's answer; REJECTED fails with `rejected_why`.
caf::expected<stable::server_hello> exchange_hellos(const link_ptr& raw, const stable::client_hello& hello,
                                                    const char* rejected_why) {
  if (auto sent = raw->send(stable::encode(hello)); !sent)
    return std::move(sent.error());
  auto reply = raw->recv();
  if (!reply)
    return std::move(reply.error());
  if (!*reply)
    return make_error(errc::link_closed, "link closed before the stable ServerHello");
  auto sh = stable::parse_server_hello(**reply);
  if (!sh)
    return std::move(sh.error());
  // r[impl stable.reconnect.failure]
  if (sh->rejected)
    return make_error(errc::session_lost, rejected_why);
  return sh;
}

/// Answers a ClientHello REJECTED and fails with `why`.
caf::error reject(const link_ptr& raw, const char* why) {
  (void) raw->send(stable::encode(stable::server_hello{true, {}, std::nullopt}));
  return make_error(errc::session_lost, why);
}

} // namespace

caf::expected<std::shared_ptr<stable_link>> stable_as_initiator(const link_ptr& raw, stable_options opts) {
  auto sh = exchange_hellos(raw, {}, "the acceptor rejected the stable conduit");
  if (!sh)
    return std::move(sh.error());
  // r[impl stable.resume-key]
  return stable_link::make(raw, sh->resume_key, opts);
}

caf::expected<std::shared_ptr<stable_link>> answer_client_hello(const link_ptr& raw, byte_span payload,
                                                                stable_options opts) {
  auto ch = stable::parse_client_hello(payload);
  if (!ch)
    return std::move(ch.error());
  if (ch->resume_key)
    return reject(raw, "a stable reconnect for a conduit this acceptor does not hold");
  auto key = make_session_resume_key();
  if (!key)
    return std::move(key.error());
  if (auto sent = raw->send(stable::encode(stable::server_hello{false, *key, std::nullopt})); !sent)
    return std::move(sent.error());
  return stable_link::make(raw, *key, opts);
}

caf::expected<void> stable_reconnect_as_initiator(const std::shared_ptr<stable_link>& s, const link_ptr& raw) {
  auto sh = exchange_hellos(raw, {s->key(), s->last_received()}, "the acceptor no longer holds the stable conduit");
  if (!sh)
    return std::move(sh.error());
  s->attach(raw, sh->last_received, sh->resume_key);
  return {};
}

caf::expected<stable_reconnected>
answer_reconnect_hello(const link_ptr& raw, byte_span payload,
                       const std::function<std::shared_ptr<stable_link>(const stable::key&)>& find) {
  auto ch = stable::parse_client_hello(payload);
  if (!ch)
    return std::move(ch.error());
  std::shared_ptr<stable_link> s;
  if (ch->resume_key && find)
    s = find(*ch->resume_key);
  if (!s)
    return reject(raw, "a stable reconnect with a key no conduit here holds");
  auto key = make_session_resume_key();
  if (!key)
    return std::move(key.error());
  // r[impl stable.resume-key]: the key rotates on every reconnect
  if (auto sent = raw->send(stable::encode(stable::server_hello{false, *key, s->last_received()})); !sent)
    return std::move(sent.error());
  auto input = s->attach(raw, ch->last_received, *key, true);
  return stable_reconnected{std::move(s), std::move(input), *ch->resume_key};
}

caf::expected<std::shared_ptr<stable_link>> stable_as_acceptor(const link_ptr& raw, stable_options opts) {
  auto hello = raw->recv();
  if (!hello)
    return std::move(hello.error());
  if (!*hello)
    return make_error(errc::link_closed, "link closed before the stable ClientHello");
  return answer_client_hello(raw, **hello, opts);
}

} // namespace vox
