// Runs a program as a separate process through the shell and collects what it prints.
#pragma once

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace vox::test {

struct run_result {
  int status = -1; ///< exit status; -1 if the program did not exit (a signal)
  std::string out; ///< stdout and stderr together
};

/// Runs `program args` (args as shell text) to completion.
inline run_result run_command(const std::string& program, const std::string& args) {
  std::string cmd = program + " " + args + " 2>&1";
  run_result r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

} // namespace vox::test
