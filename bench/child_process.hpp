// vox-bench: this binary re-executed as a helper process, always reaped.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace voxbench {

/// A child running /proc/self/exe with `args`. Its stdin is a pipe that we hold open
/// (closing it asks the child to exit), its stdout a pipe we read lines from, its stderr
/// ours. The child also gets SIGTERM if we die. The destructor reaps it.
class child_process {
public:
  static std::unique_ptr<child_process> spawn(const std::vector<std::string>& args);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The next line the child prints (without '\n'), or nullopt on timeout or end of output.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);

  /// Writes `line` and '\n' to the child's stdin; false if the child is gone.
  bool write_line(const std::string& line);

  /// Closes the child's stdin, waits up to `grace` for it to exit, then SIGKILLs it.
  /// Returns a description of how it ended ("exit 0", "signal 9"). Idempotent.
  std::string finish(std::chrono::milliseconds grace = std::chrono::milliseconds{10000});

private:
  child_process(pid_t pid, int to_child, int from_child);

  pid_t pid_;
  int to_child_;
  int from_child_;
  std::string buffered_;
  std::string ended_;
};

} // namespace voxbench
