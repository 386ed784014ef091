#include "transport/bare_conduit.hpp"

namespace vox {

caf::expected<void> bare_conduit::send(const message& msg) {
  // Each sending thread reuses its own buffer: encoding allocates only when a message is
  // larger than any this thread encoded before.
  thread_local byte_buffer scratch;
  scratch.clear();
  encode_message_into(scratch, msg);
  return link_->send(scratch);
}

caf::expected<void> bare_conduit::send_many(std::span<const message> msgs) {
  thread_local std::vector<byte_buffer> scratch;
  thread_local std::vector<byte_span> spans;
  if (scratch.size() < msgs.size())
    scratch.resize(msgs.size());
  spans.clear();
  for (size_t i = 0; i < msgs.size(); ++i) {
    scratch[i].clear();
    encode_message_into(scratch[i], msgs[i]);
    spans.emplace_back(scratch[i]);
  }
  auto sent = link_->send_many(spans);
  for (auto& buf : scratch)
    if (buf.capacity() > 64 * 1024)
      byte_buffer{}.swap(buf); // a burst of large Messages is not kept per thread
  return sent;
}

caf::expected<std::optional<message>> bare_conduit::recv() {
  auto frame = link_->recv();
  if (!frame)
    return std::move(frame.error());
  if (!*frame)
    return std::optional<message>{};
  auto msg = decode_message(**frame);
  if (!msg)
    return std::move(msg.error());
  return std::optional<message>{std::move(*msg)};
}

bool is_decode_error(const caf::error& err) {
  for (auto code : {errc::truncated, errc::varint_overflow, errc::invalid_tag, errc::invalid_utf8,
                    errc::length_limit, errc::trailing_bytes, errc::invalid_value})
    if (is(err, code))
      return true;
  return false;
}

} // namespace vox
