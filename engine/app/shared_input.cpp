#include "app/shared_input.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace smtpfault::app {

namespace {

std::string input_path;

// A pipe nobody writes to or closes (an inherited stdin, as some CI runners give every step)
// must not hold the run: one silent this long, with nothing sent yet, is taken for empty.
constexpr int silent_pipe_ms = 3000;

// Copies the pipe on fd 0 to a memory file; "/proc/self/fd/N" opens it anew, from its start,
// for each command.
std::optional<std::string> copy_pipe() {
  int copy = memfd_create("smtpfault-stdin", MFD_CLOEXEC);
  if (copy < 0) return std::string("cannot hold standard input: ") + std::strerror(errno);
  char buf[65536];
  bool anything = false;
  for (;;) {
    pollfd p{0, POLLIN, 0};
    int ready = poll(&p, 1, anything ? -1 : silent_pipe_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      std::fprintf(stderr,
                   "smtpfault test: standard input is a pipe that neither sent nor ended in %d "
                   "s: the commands get none, as with </dev/null\n",
                   silent_pipe_ms / 1000);
      close(copy);
      input_path = "/dev/null";
      return std::nullopt;
    }
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(copy);
      return std::string("cannot read standard input: ") + std::strerror(errno);
    }
    if (n == 0) break;
    anything = true;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(copy, buf + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        close(copy);
        return std::string("cannot hold standard input: ") + std::strerror(errno);
      }
      done += w;
    }
  }
  input_path = "/proc/self/fd/" + std::to_string(copy);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> share_standard_input() {
  struct stat st {};
  if (fstat(0, &st) != 0 || isatty(0)) {
    input_path = "/dev/null";  // closed, or a terminal
  } else if (S_ISREG(st.st_mode)) {
    input_path = "/proc/self/fd/0";  // a new open file, so each starts at the beginning
  } else if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
    return copy_pipe();
  }
  return std::nullopt;
}

// Opened here, not in the spawned child: /proc/self/fd/0 failed to open there (ENOENT).
int open_shared_input() {
  if (input_path.empty()) return -1;
  return open(input_path.c_str(), O_RDONLY | O_CLOEXEC);
}

}  // namespace smtpfault::app
