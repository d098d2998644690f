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
// Every command gets all of it, held in memory: a pipe that goes on and on (`yes |`) is refused.
constexpr std::size_t max_input = 64 * 1024 * 1024;

std::optional<std::string> write_all(int fd, const char* data, std::size_t n) {
  for (std::size_t done = 0; done < n;) {
    ssize_t w = write(fd, data + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return std::string("cannot hold standard input: ") + std::strerror(errno);
    done += static_cast<std::size_t>(w);
  }
  return std::nullopt;
}

// Copies the pipe on fd 0 to a memory file, which "/proc/self/fd/N" opens anew, from its start,
// for each command. A pipe that sent something and then paused is waited for, and said to be.
std::optional<std::string> copy_pipe(int copy) {
  char buf[65536];
  std::size_t held = 0;
  bool waiting_noted = false;
  for (;;) {
    pollfd p{0, POLLIN, 0};
    int ready = poll(&p, 1, waiting_noted ? -1 : silent_pipe_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0 && held == 0) {
      std::fprintf(stderr,
                   "smtpfault test: standard input is a pipe that neither sent nor ended in %d "
                   "s: the commands get none, as with </dev/null\n",
                   silent_pipe_ms / 1000);
      input_path = "/dev/null";
      return std::nullopt;
    }
    if (ready == 0) {
      std::fprintf(stderr,
                   "smtpfault test: waiting for standard input to end: every scenario's command "
                   "gets all of it (give </dev/null when the command reads none)\n");
      waiting_noted = true;
      continue;
    }
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::string("cannot read standard input: ") + std::strerror(errno);
    if (n == 0) break;
    held += static_cast<std::size_t>(n);
    if (held > max_input) {
      return std::string("standard input goes on past 64 MiB; every command would get a copy: ") +
             "give it as a file (< FILE), or </dev/null when the command reads none";
    }
    if (auto err = write_all(copy, buf, static_cast<std::size_t>(n))) return err;
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
    int copy = memfd_create("smtpfault-stdin", MFD_CLOEXEC);
    if (copy < 0) return std::string("cannot hold standard input: ") + std::strerror(errno);
    auto err = copy_pipe(copy);
    if (err || input_path == "/dev/null") close(copy);
    return err;
  }
  return std::nullopt;
}

// Opened here, not in the spawned child: /proc/self/fd/0 failed to open there (ENOENT).
int open_shared_input() {
  if (input_path.empty()) return -1;
  const int fd = open(input_path.c_str(), O_RDONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -2;
}

std::string shared_input_error() {
  return "cannot open standard input (" + input_path + ") for the command: " + std::strerror(errno);
}

}  // namespace smtpfault::app
