#include "app/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace smtpfault::app {

namespace {

constexpr std::size_t max_output = 1024 * 1024;

[[noreturn]] void exec_child(const std::vector<std::string>& argv,
                             const std::vector<std::pair<std::string, std::string>>& env, int out) {
  setpgid(0, 0);
  dup2(out, 1);
  dup2(out, 2);
  for (const auto& [k, v] : env)
    setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
  _exit(127);
}

// Waits for the child with a deadline; pidfd lets poll() do it without a busy loop.
bool wait_with_deadline(pid_t pid, std::chrono::milliseconds timeout, int& status) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    close(pidfd);
    if (r == 0) return false;
    return waitpid(pid, &status, 0) == pid;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return true;
    usleep(5000);
  }
  return false;
}

std::string read_capped(int fd) {
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0 && out.size() < max_output) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  if (out.size() >= max_output) out += "\n[output truncated]\n";
  return out;
}

}  // namespace

child_result run_child(const std::vector<std::string>& argv,
                       const std::vector<std::pair<std::string, std::string>>& env,
                       std::chrono::milliseconds timeout) {
  child_result result;
  char path[] = "/tmp/smtpfault-output-XXXXXX";
  int out = mkstemp(path);
  if (out < 0) {
    result.error = std::string("cannot create a temporary file: ") + std::strerror(errno);
    return result;
  }
  unlink(path);
  pid_t pid = fork();
  if (pid < 0) {
    close(out);
    result.error = std::string("cannot fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) exec_child(argv, env, out);
  setpgid(pid, pid);  // also here, so the group exists before any kill below
  int status = 0;
  if (!wait_with_deadline(pid, timeout, status)) {
    result.timed_out = true;
    kill(-pid, SIGTERM);
    if (!wait_with_deadline(pid, std::chrono::milliseconds(1000), status)) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
  kill(-pid, SIGKILL);  // anything the command left running in its group
  if (result.timed_out) {
    result.exit_code = -1;
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  result.output = read_capped(out);
  close(out);
  return result;
}

}  // namespace smtpfault::app
