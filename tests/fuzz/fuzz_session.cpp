// Frames into a serving session: after a real prologue and handshake over a memory link,
// the input's frames (each a u16-LE length, then that many bytes) go to an acceptor
// session, then a Ping. Everything the session writes must decode as a Message, and it
// must either answer the Ping with its Pong or end; never crash or hang.
#include <cstdint>
#include <future>

#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/session_actor.hpp"
#include "fuzz/fuzz_actor_system.hpp"
#include "protocol/message.hpp"
#include "transport/handshake_exchange.hpp"
#include "transport/memory_link.hpp"
#include "transport/prologue.hpp"

namespace {

using namespace vox;

session_options serving() {
  session_options o;
  o.log = [](const std::string&) {};
  o.root_handler = [](incoming_call in, reply_sink sink) {
    payload ret{0x00};
    ret.insert(ret.end(), in.args.begin(), in.args.end());
    sink.reply(std::move(ret));
  };
  return o;
}

constexpr uint64_t final_nonce = 0x5eed;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& sys = fuzz::actor_system();
  auto [ours, theirs] = make_memory_link_pair();
  auto server = std::async(std::launch::async, [&sys, l = theirs] { return accept_session(sys, l, serving()); });
  if (!initiate_transport(*ours, conduit_mode::bare) || !handshake_as_initiator(*ours, handshake_options{})) {
    ours->abort();
    server.get();
    return 0;
  }
  auto session = server.get();
  if (!session) {
    ours->abort();
    return 0;
  }
  bool open = true;
  for (size_t pos = 0; open && pos + 2 <= size;) {
    size_t len = data[pos] | size_t{data[pos + 1]} << 8;
    pos += 2;
    len = std::min(len, size - pos);
    open = static_cast<bool>(ours->send(byte_span{data + pos, len}));
    pos += len;
  }
  if (open)
    open = static_cast<bool>(ours->send(encode_message(message{0, ping{final_nonce}})));
  // Read until the Pong or the end. Every frame must be a Message.
  for (bool done = !open; !done;) {
    auto frame = ours->recv();
    if (!frame || !*frame)
      break;
    auto msg = decode_message(**frame, trailing::reject);
    if (!msg)
      __builtin_trap();
    if (auto* p = std::get_if<pong>(&msg->payload); p && msg->connection_id == 0 && p->nonce == final_nonce)
      done = true;
  }
  caf::anon_send(session->actor, stop_atom::value);
  ours->abort();
  caf::scoped_actor self{sys};
  self->monitor(session->actor);
  self->receive([](caf::down_msg&) {}, caf::after(std::chrono::seconds{10}) >> [] { __builtin_trap(); });
  return 0;
}
