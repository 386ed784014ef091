// Command lines are input too (#13 item 5): the shared option parser, and every program
// run as a separate process with an unknown option, a missing value and a malformed number.
#include <catch2/catch.hpp>

#include "apps/cli.hpp"
#include "support/run_command.hpp"

using namespace vox;

namespace {

/// argv for `options::parse` from string literals (argv[0] is the program).
struct argv_of {
  std::vector<std::string> words;
  std::vector<char*> ptrs;
  argv_of(std::initializer_list<const char*> args) : words(args.begin(), args.end()) {
    for (auto& w : words)
      ptrs.push_back(w.data());
    ptrs.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(words.size()); }
  char** argv() { return ptrs.data(); }
};

struct bound {
  std::string host = "127.0.0.1";
  uint16_t port = 7;
  uint32_t count = 3;
  bool verbose = false;
  std::vector<std::string> files;
  cli::options opts{"prog", "usage: prog\n"};
  bound() {
    opts.address("--connect", host, port)
      .number<uint32_t>("--count", count, 1, 100)
      .flag("--verbose", verbose)
      .positional(files, 1);
  }
  std::optional<int> parse(argv_of args) { return opts.parse(args.argc(), args.argv()); }
};

} // namespace

TEST_CASE("the option parser sets the options given and keeps the defaults of the others", "[cli]") {
  bound b;
  CHECK_FALSE(b.parse({"prog", "--count", "42", "--verbose", "file"}).has_value());
  CHECK(b.count == 42);
  CHECK(b.verbose);
  CHECK(b.host == "127.0.0.1");
  CHECK(b.port == 7);
  CHECK(b.files == std::vector<std::string>{"file"});
  CHECK(b.opts.given("--count"));
  CHECK_FALSE(b.opts.given("--connect"));
}

TEST_CASE("the option parser takes --name=value as well as --name value", "[cli]") {
  bound b;
  CHECK_FALSE(b.parse({"prog", "--connect=localhost:99", "--count=5"}).has_value());
  CHECK(b.host == "localhost");
  CHECK(b.port == 99);
  CHECK(b.count == 5);
}

TEST_CASE("the option parser refuses unknown options, missing values, bad numbers and stray arguments", "[cli]") {
  CHECK(bound{}.parse({"prog", "--bogus"}) == 2);
  CHECK(bound{}.parse({"prog", "--count"}) == 2);
  // A following option is not taken as the value.
  CHECK(bound{}.parse({"prog", "--count", "--verbose"}) == 2);
  for (const char* bad : {"0", "101", "-1", "1x", "", " 5", "0x10", "99999999999999999999"})
    CHECK(bound{}.parse({"prog", "--count", bad}) == 2);
  CHECK(bound{}.parse({"prog", "--connect", "nohost"}) == 2);
  CHECK(bound{}.parse({"prog", "--connect", "h:65536"}) == 2);
  CHECK(bound{}.parse({"prog", "--verbose=yes"}) == 2);
  CHECK(bound{}.parse({"prog", "one", "two"}) == 2);
}

TEST_CASE("the option parser reports a required option that is missing and answers --help with status 0", "[cli]") {
  bound b;
  b.opts.required("--connect");
  CHECK(b.parse({"prog", "--count", "2"}) == 2);
  bound c;
  CHECK(c.parse({"prog", "--help"}) == 0);
}

namespace {

/// Each of `program`'s bad command lines exits 2 and names the option it is about.
void check_refusals(const std::string& program, const std::vector<std::pair<std::string, std::string>>& cases) {
  for (const auto& [args, named] : cases) {
    auto r = test::run_command(program, args);
    INFO(program << " " << args << " -> " << r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find(named) != std::string::npos);
    CHECK(r.out.find("usage:") != std::string::npos);
  }
}

} // namespace

TEST_CASE("vox-testbed refuses an unknown option, a missing value and a malformed number, naming the option",
          "[cli][apps]") {
  check_refusals(VOX_TESTBED_PATH, {{"serve --listen 127.0.0.1:0 --bogus-flag 3", "--bogus-flag"},
                                    {"serve --port", "--port"},
                                    {"serve --port 12x", "--port"},
                                    {"serve --resume-grace -5", "--resume-grace"},
                                    {"client --connect 127.0.0.1:1 --scenario all --conduit wobbly", "--conduit"},
                                    {"client --connect 127.0.0.1:1", "--scenario"},
                                    {"client --connect 127.0.0.1:1 --scenario all --compress sometimes", "sometimes"},
                                    {"serve --port 0 --compress-level 99", "'99'"}});
  auto help = test::run_command(VOX_TESTBED_PATH, "serve --help");
  CHECK(help.status == 0);
  CHECK(help.out.find("usage:") != std::string::npos);
}

TEST_CASE("vox-echo refuses an unknown option, a missing value and a malformed number, naming the option",
          "[cli][apps]") {
  check_refusals(VOX_ECHO_PATH, {{"serve --bogus", "--bogus"},
                                 {"serve --keepalive", "--keepalive"},
                                 {"serve --port 99999", "--port"},
                                 {"call --connect 127.0.0.1:1 --count 3.5", "--count"},
                                 {"call --connect", "--connect"}});
}

TEST_CASE("vox-soak refuses an unknown option, a missing value and a malformed number, naming the option",
          "[cli][apps]") {
  check_refusals(VOX_SOAK_PATH, {{"--connect 127.0.0.1:1 --pid 1 --bogus", "--bogus"},
                                 {"--connect 127.0.0.1:1 --pid", "--pid"},
                                 {"--connect 127.0.0.1:1 --pid 1 --rounds many", "--rounds"}});
}

TEST_CASE("vox-dump refuses an unknown option and a stray argument", "[cli][apps]") {
  check_refusals(VOX_DUMP_PATH, {{"--gzip x.bin", "--gzip"},
                                 {"a.bin b.bin", "b.bin"},
                                 {"--framed", "FILE"},
                                 {"--framed --zstd x.bin", "--zstd"}});
}

#ifdef VOX_BENCH_PATH
TEST_CASE("vox-bench refuses an unknown option, a missing value and a malformed number, naming the option",
          "[cli][apps]") {
  check_refusals(VOX_BENCH_PATH, {{"--bogus", "--bogus"},
                                  {"--seconds", "--seconds"},
                                  {"--seconds 2s", "--seconds"},
                                  {"server --port -1", "--port"},
                                  {"sessions-client --sessions 10", "--port"}});
}
#endif
