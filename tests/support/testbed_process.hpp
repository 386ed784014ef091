// `vox-testbed` as a child process (posix_spawn, no shell): a real second peer for tests
// that kill, freeze or measure it.
#pragma once

#include <csignal>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace vox::test {

/// Resident set size in KiB (VmRSS) from a /proc/<pid>/status file, -1 if unreadable.
inline long rss_of(const std::string& status_file) {
  std::ifstream in{status_file};
  std::string key;
  long kib = -1;
  while (in >> key)
    if (key == "VmRSS:" && in >> kib)
      return kib;
  return -1;
}

/// `vox-testbed ARGS…` with `env` added to this process's environment. If it prints
/// LISTEN_ADDR=HOST:PORT first (serve, subject server-listen), `port` is that port.
/// Stopped with SIGTERM (or killed, if it was frozen or killed) when destroyed.
class testbed_process {
public:
  explicit testbed_process(std::vector<std::string> args = {"serve", "--port", "0"},
                           std::vector<std::string> env = {}, bool expect_listen_addr = true) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
      return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::string path = VOX_TESTBED_PATH;
    args.insert(args.begin(), path);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    for (char** e = environ; *e != nullptr; ++e)
      env.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env)
      envp.push_back(e.data());
    envp.push_back(nullptr);
    if (posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), envp.data()) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (pid_ > 0 && expect_listen_addr)
      read_port(out[0]);
    ::close(out[0]);
  }

  ~testbed_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGCONT); // a frozen child would not see the SIGTERM
      stop();
    }
  }

  testbed_process(const testbed_process&) = delete;
  testbed_process& operator=(const testbed_process&) = delete;

  pid_t pid() const { return pid_; }

  /// 0 if the child did not say where it listens.
  uint16_t port() const { return port_; }

  long rss_kib() const { return rss_of("/proc/" + std::to_string(pid_) + "/status"); }

  void signal(int sig) const {
    if (pid_ > 0)
      ::kill(pid_, sig);
  }

  /// SIGTERM, then its exit status (-1: it did not exit normally, e.g. it was killed).
  int stop() { return stop_with(SIGTERM); }

  /// SIGKILL, and reaps it.
  void kill() { stop_with(SIGKILL); }

private:
  int stop_with(int sig) {
    if (pid_ <= 0)
      return status_;
    ::kill(pid_, sig);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return status_;
  }

  void read_port(int fd) {
    std::string line;
    char c;
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 10000) > 0 && ::read(fd, &c, 1) == 1 && c != '\n')
      line += c;
    auto colon = line.rfind(':');
    if (line.rfind("LISTEN_ADDR=", 0) == 0 && colon != std::string::npos)
      port_ = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
  }

  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int status_ = -1;
};

} // namespace vox::test
