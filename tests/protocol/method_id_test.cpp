// Method ids of the Testbed conformance service and the kebab-case rule behind them.
#include "protocol/method_id.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace vox;

namespace {

// docs/testbed-service.md §1 (Rust method names, ids from the TS generated client).
const std::vector<std::pair<std::string, uint64_t>> testbed_ids = {
    {"echo", 0x880bc4eee23574beULL},
    {"reverse", 0x1c223f30e180392aULL},
    {"divide", 0xfb68d9318f830875ULL},
    {"lookup", 0xa15ff52094712a3bULL},
    {"sum", 0x51f9cfd8e86577c9ULL},
    {"generate", 0x239e5b99b1f8207aULL},
    {"generate_retry_non_idem", 0x34419529478cc7b8ULL},
    {"generate_retry_idem", 0xe2d27fd9098c6ea2ULL},
    {"transform", 0xcb469cff8d798febULL},
    {"echo_point", 0x81f5386d589dfbe4ULL},
    {"create_person", 0x68ffa90b7728bde7ULL},
    {"rectangle_area", 0x223fe0282d263107ULL},
    {"parse_color", 0xd4f16ea9eca132e6ULL},
    {"shape_area", 0x04385a4be2a882f5ULL},
    {"create_canvas", 0xef421eb5b08c973aULL},
    {"process_message", 0xe08f0f5254e7a997ULL},
    {"get_points", 0x598518523a6266bfULL},
    {"swap_pair", 0x7d55a713ad612bf2ULL},
    {"echo_bytes", 0x44056c7842fa336cULL},
    {"echo_bool", 0x5136d8f01a5f496cULL},
    {"echo_u64", 0x85e2380dbf7ffe65ULL},
    {"echo_option_string", 0xb1a5bfd205b3fbfcULL},
    {"sum_large", 0x9a7bed545e088054ULL},
    {"generate_large", 0x8edfbd65d162f685ULL},
    {"all_colors", 0xfbfb05bbcaade4a0ULL},
    {"describe_point", 0x62feb14a8fcf9b6dULL},
    {"echo_shape", 0x4125b5e678b7b4a5ULL},
    {"echo_status_v1", 0xc7c5aa845cfb8bf6ULL},
    {"echo_tag_v1", 0x6619071be5d5c259ULL},
    {"echo_profile", 0xbd9bcabddeebeb04ULL},
    {"echo_record", 0x100b0e08da4b8f1aULL},
    {"echo_status", 0x697590d3ffc36703ULL},
    {"echo_tag", 0x2bd1b3149d73ce97ULL},
    {"echo_measurement", 0x3b3d22b015fa1a3fULL},
    {"echo_config", 0xe13a477fb964ce28ULL},
};

// Expected outputs checked against the `kebab` function of tools/check_vectors.py.
const std::vector<std::pair<std::string, std::string>> kebab_cases = {
    {"Testbed", "testbed"},
    {"echo_status_v1", "echo-status-v1"},
    {"echoStatusV1", "echo-status-v1"},
    {"MyService", "my-service"},
    {"HTTPServer", "http-server"},
    {"already-kebab", "already-kebab"},
    {"", ""},
    {"DoThingFast", "do-thing-fast"},
    {"MY_SERVICE", "my-service"},
    {"__a__b__", "a-b"},
    {"ABC1def", "abc1def"},
    {"abc1Def", "abc1-def"},
    {"XMLHttpRequest", "xml-http-request"},
    {"getHTTPResponseCode", "get-http-response-code"},
    {"A", "a"},
    {"aB", "a-b"},
    {"Ab", "ab"},
    {"AB", "ab"},
    {"ABc", "a-bc"},
    {"v2Beta", "v2-beta"},
    {"IOError", "io-error"},
    {"snake__case", "snake-case"},
    {"  spaced out ", "spaced-out"},
    {"a1B2C3", "a1-b2c3"},
    {"HTTP2Server", "http2-server"},
    {"X-Y_z", "x-y-z"},
    {"echo.point", "echo-point"},
    {"lower", "lower"},
    {"UPPER", "upper"},
    {"123", "123"},
    {"1a", "1a"},
    {"a1", "a1"},
    {"A1B", "a1b"},
};

} // namespace

// r[verify schema.method-id]
TEST_CASE("every Testbed method id matches the reference table", "[protocol]") {
  REQUIRE(testbed_ids.size() == 35);
  std::set<uint64_t> distinct;
  for (const auto& [name, want] : testbed_ids) {
    INFO("Testbed." << name);
    CHECK(method_id("Testbed", name) == want);
    distinct.insert(want);
  }
  CHECK(distinct.size() == testbed_ids.size());
}

// r[verify schema.method-id]
TEST_CASE("method ids hash only the kebab-cased names", "[protocol]") {
  CHECK(method_id("Testbed", "echo_status_v1") == method_id("testbed", "echoStatusV1"));
  CHECK(method_id("MyService", "DoThingFast") == method_id("my-service", "do-thing-fast"));
  CHECK(method_id("MY_SERVICE", "DO_THING_FAST") == method_id("my-service", "do-thing-fast"));
  CHECK(method_id("Testbed", "echo") != method_id("Testbed", "reverse"));
}

// r[verify schema.method-id]
TEST_CASE("kebab_case follows heck's word splitting", "[protocol]") {
  for (const auto& [input, want] : kebab_cases) {
    INFO("input \"" << input << "\"");
    CHECK(kebab_case(input) == want);
  }
}
