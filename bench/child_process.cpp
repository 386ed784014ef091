#include "bench/child_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace voxbench {

std::unique_ptr<child_process> child_process::spawn(const std::vector<std::string>& args) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0)
    return nullptr;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return nullptr;
  }
  // Everything exec needs is prepared before fork: the child only calls
  // async-signal-safe functions.
  std::vector<std::string> argv_s{"vox-bench"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent)
      ::_exit(126); // the parent is already gone
    ::dup2(in[0], 0);  // dup2 clears close-on-exec on 0 and 1
    ::dup2(out[1], 1);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    return nullptr;
  }
  return std::unique_ptr<child_process>{new child_process(pid, in[1], out[0])};
}

child_process::child_process(pid_t pid, int to_child, int from_child)
  : pid_(pid), to_child_(to_child), from_child_(from_child) {}

child_process::~child_process() { finish(); }

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
      auto line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (from_child_ < 0 || left.count() <= 0)
      return std::nullopt;
    pollfd p{from_child_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return std::nullopt;
    char buf[512];
    auto n = ::read(from_child_, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return std::nullopt; // the child closed its stdout (exited)
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

bool child_process::write_line(const std::string& line) {
  auto text = line + "\n";
  size_t off = 0;
  while (to_child_ >= 0 && off < text.size()) {
    auto n = ::write(to_child_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false; // EPIPE (SIGPIPE is ignored): the child exited
    off += static_cast<size_t>(n);
  }
  return off == text.size();
}

std::string child_process::finish(std::chrono::milliseconds grace) {
  if (!ended_.empty())
    return ended_;
  if (to_child_ >= 0) {
    ::close(to_child_);
    to_child_ = -1;
  }
  int status = 0;
  pid_t r = 0;
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    r = ::waitpid(pid_, &status, WNOHANG);
    if (r < 0 && errno == EINTR)
      continue;
    if (r != 0 || std::chrono::steady_clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  bool killed = false;
  if (r == 0) {
    ::kill(pid_, SIGKILL);
    killed = true;
    while ((r = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
  }
  if (from_child_ >= 0) {
    ::close(from_child_);
    from_child_ = -1;
  }
  if (r < 0)
    ended_ = std::string{"waitpid: "} + std::strerror(errno);
  else if (WIFEXITED(status))
    ended_ = "exit " + std::to_string(WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    ended_ = "signal " + std::to_string(WTERMSIG(status));
  else
    ended_ = "unknown status";
  if (killed)
    ended_ += " (killed after " + std::to_string(grace.count()) + " ms)";
  return ended_;
}

} // namespace voxbench
