// vox-dump: prints vox traffic as one readable line per message.
//
//   vox-dump FILE            FILE holds exactly one bare postcard Message
//   vox-dump --framed FILE   FILE is a u32-LE framed stream, as read from a TCP link; a
//                            capture from the first byte also shows the transport prologue
//                            and the CBOR handshake
//   vox-dump --zstd FILE     as --framed, for one direction of a zstd-compressed link: what
//                            follows the handshake (all of it, in a capture without one) is
//                            the link's records, one per Message
// FILE may be "-" for standard input. Exit status 0 when everything decoded; otherwise a
// one-line error naming the byte offset on stderr and status 1 (2 for usage errors).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "apps/cli.hpp"
#include "protocol/handshake.hpp"
#include "protocol/message.hpp"
#include "transport/prologue.hpp"
#include "transport/zstd_link.hpp"

using namespace vox;

namespace {

const char* const usage_text =
  "usage: vox-dump [--framed | --zstd] FILE|-\n"
  "  decodes one bare vox Message (or, with --framed, a u32-LE framed stream of\n"
  "  them; with --zstd, such a stream from a compressed link) and prints one line\n"
  "  per message; SENSITIVE metadata is redacted\n";

/// The largest window a capture may declare (zstd's own default limit): a dump of an
/// untrusted capture must not allocate gigabytes for it.
constexpr uint8_t dump_window_log_max = 27;

bool read_input(const std::string& path, byte_buffer& out) {
  if (path == "-") {
    out.assign(std::istreambuf_iterator<char>{std::cin}, std::istreambuf_iterator<char>{});
    return true;
  }
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return false;
  out.assign(std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{});
  return true;
}

int fail(const std::string& path, const std::string& what) {
  std::fflush(stdout); // keep the lines printed so far ahead of the error
  std::fprintf(stderr, "vox-dump: %s: %s\n", path.c_str(), what.c_str());
  return 1;
}

/// A prologue message, if `frame` is one (8 bytes with a VOT* magic).
std::optional<std::string> prologue_line(byte_span frame) {
  auto p = parse_prologue_message(frame);
  if (!p)
    return std::nullopt;
  const char* name = p->magic == transport_hello_magic    ? "TransportHello"
                     : p->magic == transport_accept_magic ? "TransportAccept"
                     : p->magic == transport_reject_magic ? "TransportReject"
                                                          : nullptr;
  if (name == nullptr)
    return std::nullopt;
  std::string line = std::string{"prologue "} + name + " version=" + std::to_string(p->version);
  if (p->magic == transport_reject_magic)
    line += " reason=" + std::to_string(p->value);
  else
    line += std::string{" mode="} + to_string(static_cast<conduit_mode>(p->value));
  return line;
}

/// Whether `data` starts with a framed prologue message (a capture from the first byte).
bool starts_with_prologue(const byte_buffer& data) {
  if (data.size() < 4)
    return false;
  uint32_t len = uint32_t(data[0]) | uint32_t(data[1]) << 8 | uint32_t(data[2]) << 16 | uint32_t(data[3]) << 24;
  return len <= data.size() - 4 && prologue_line(byte_span{data.data() + 4, len}).has_value();
}

std::string resume_key_text(const std::optional<byte_buffer>& key) {
  return key ? std::to_string(key->size()) + "B" : std::string{"none"};
}

std::string handshake_line(const handshake_message& hs) {
  std::string line = std::string{"handshake "} + handshake_message_name(hs);
  std::visit(
    [&](const auto& m) {
      using T = std::decay_t<decltype(m)>;
      if constexpr (std::is_same_v<T, hello> || std::is_same_v<T, hello_yourself>) {
        if constexpr (std::is_same_v<T, hello>)
          line += std::string{" parity="} + to_string(m.parity);
        line += std::string{" settings.parity="} + to_string(m.settings.parity)
                + " max_concurrent_requests=" + std::to_string(m.settings.max_concurrent_requests)
                + " schemas=" + std::to_string(m.message_payload_schema.size()) + "B"
                + " supports_retry=" + (m.supports_retry ? "true" : "false")
                + " resume_key=" + resume_key_text(m.resume_key);
        if (m.zstd_window_log_max)
          line += " zstd_window_log_max=" + std::to_string(*m.zstd_window_log_max);
      } else if constexpr (std::is_same_v<T, sorry>) {
        line += " reason=\"" + m.reason + "\"";
      }
    },
    hs);
  return line;
}

int print_message(const std::string& path, byte_span bytes, const std::string& where, bool decompressed) {
  auto msg = decode_message(bytes, trailing::reject);
  if (!msg)
    return fail(path, where
                        + (decompressed ? " (offsets below are within the decompressed Message): "
                                        : " (payload offsets below are within the frame): ")
                        + describe(msg.error()));
  std::printf("%s\n", to_string(*msg).c_str());
  return 0;
}

/// The records of a compressed link from byte `pos` on, to the end (README "Compressed
/// links").
int dump_records(const std::string& path, const byte_buffer& data, size_t pos, std::shared_ptr<zstd_decoder> zstd) {
  zstd_record_reader reader{std::move(zstd), link_options{}.max_frame_size};
  size_t index = 0;
  int status = 0;
  // One record at a time, so that an error names the record it is in.
  std::vector<byte_buffer> payloads;
  while (pos < data.size() && status == 0) {
    size_t start = pos;
    payloads.clear();
    while (pos < data.size() && payloads.empty()) {
      if (auto err = reader.feed(byte_span{data.data() + pos, 1},
                                 [&](byte_span p) { payloads.emplace_back(p.begin(), p.end()); }))
        return fail(path, "byte " + std::to_string(start) + ": record " + std::to_string(index) + ": "
                            + describe(err));
      ++pos;
    }
    if (payloads.empty())
      return fail(path, "byte " + std::to_string(start) + ": record " + std::to_string(index)
                          + " is cut short by the end of the capture");
    status = print_message(path, payloads.front(),
                           "byte " + std::to_string(start) + ": record " + std::to_string(index), true);
    ++index;
  }
  return status;
}

/// `zstd`: after the handshake, the Messages are a compressed link's records (--zstd).
int dump_framed(const std::string& path, const byte_buffer& data, std::shared_ptr<zstd_decoder> zstd) {
  size_t pos = 0, index = 0;
  // A capture from the first byte starts with a prologue message, then CBOR handshake
  // messages up to the last one this direction sends (LetsGo or HelloYourself).
  bool handshake_phase = false, first = true;
  while (pos < data.size()) {
    if (zstd && !handshake_phase && !first)
      return dump_records(path, data, pos, zstd);
    if (zstd && first && !starts_with_prologue(data))
      return dump_records(path, data, pos, zstd);
    if (data.size() - pos < 4)
      return fail(path, "byte " + std::to_string(pos) + ": frame " + std::to_string(index)
                          + ": truncated length prefix (" + std::to_string(data.size() - pos)
                          + " of 4 bytes)");
    uint32_t len = uint32_t(data[pos]) | uint32_t(data[pos + 1]) << 8
                   | uint32_t(data[pos + 2]) << 16 | uint32_t(data[pos + 3]) << 24;
    if (len > data.size() - pos - 4)
      return fail(path, "byte " + std::to_string(pos) + ": frame " + std::to_string(index)
                          + " declares " + std::to_string(len) + " bytes but only "
                          + std::to_string(data.size() - pos - 4) + " remain");
    byte_span frame{data.data() + pos + 4, len};
    auto frame_start = pos;
    pos += 4 + len;
    ++index;
    if (first) {
      first = false;
      if (auto line = prologue_line(frame)) {
        std::printf("%s\n", line->c_str());
        handshake_phase = true;
        continue;
      }
    }
    if (handshake_phase) {
      auto hs = decode_handshake(frame);
      if (!hs)
        return fail(path, "byte " + std::to_string(frame_start) + ": frame " + std::to_string(index - 1)
                            + ": " + describe(hs.error()));
      std::printf("%s\n", handshake_line(*hs).c_str());
      handshake_phase = !std::holds_alternative<lets_go>(*hs)
                        && !std::holds_alternative<hello_yourself>(*hs)
                        && !std::holds_alternative<sorry>(*hs);
      continue;
    }
    if (auto status = print_message(path, frame,
                                    "byte " + std::to_string(frame_start) + ": frame " + std::to_string(index - 1),
                                    false))
      return status;
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  bool framed = false;
  bool zstd = false;
  std::vector<std::string> files;
  cli::options opts{"vox-dump", usage_text};
  opts.flag("--framed", framed).flag("--zstd", zstd).positional(files, 1);
  if (auto status = opts.parse(argc, argv))
    return *status;
  if (files.empty())
    return opts.error("no FILE given");
  if (framed && zstd)
    return opts.error("give --framed or --zstd, not both");
  const auto& path = files.front();
  byte_buffer data;
  if (!read_input(path, data))
    return fail(path, std::string{"cannot read: "} + std::strerror(errno));
  if (zstd) {
    auto decoder = zstd_decoder::make(dump_window_log_max, link_options{}.max_frame_size);
    if (!decoder)
      return fail(path, describe(decoder.error()));
    return dump_framed(path, data, std::make_shared<zstd_decoder>(std::move(*decoder)));
  }
  if (framed)
    return dump_framed(path, data, nullptr);
  auto msg = decode_message(data, trailing::reject);
  if (!msg)
    return fail(path, describe(msg.error()));
  std::printf("%s\n", to_string(*msg).c_str());
  return 0;
}
