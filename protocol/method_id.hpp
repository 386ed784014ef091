// Method ids: how a call names its method on the wire (RequestCall.method_id).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vox {

/// heck's `ToKebabCase` as vox applies it to service and method names: words split at
/// non-alphanumeric characters, at lower→Upper changes and before the last capital of an
/// uppercase run followed by a lowercase letter; digits stay in their word; words are
/// lowercased and joined with '-'. "echoStatusV1" → "echo-status-v1", "HTTPServer" →
/// "http-server". Only ASCII letters and digits count as word characters.
std::string kebab_case(std::string_view name);

/// The id of `method` on `service`: the first 8 bytes, little-endian, of
/// BLAKE3(kebab(service) + "." + kebab(method)). The signature is not hashed.
uint64_t method_id(std::string_view service, std::string_view method);

} // namespace vox
