#include "app/child_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

#include "app/shared_input.hpp"

namespace smtpfault::app {

namespace {

constexpr std::size_t max_output = 1024 * 1024;

// The process groups of the commands running now (0: a free slot). Lock-free atomics, so the
// interrupt handler may read them.
std::atomic<pid_t> running_groups[1024];

void remember_group(pid_t group) {
  for (auto& slot : running_groups) {
    pid_t free = 0;
    if (slot.compare_exchange_strong(free, group)) return;
  }
}

void forget_group(pid_t group) {
  for (auto& slot : running_groups) {
    pid_t g = group;
    if (slot.compare_exchange_strong(g, 0)) return;
  }
}

bool any_group_running() {
  for (const auto& slot : running_groups)
    if (slot.load() != 0) return true;
  return false;
}

// Held from a spawn until its group is recorded, and while left-behind processes are ended: a
// command just started must not be taken for one of them.
std::mutex spawning;

// Descendants that leave a command's process group (setsid: a daemon, `setsid mailer &`) come
// to this process when their parent exits, not to init, so that the run can end them as it
// ends what stays in the group.
void adopt_orphans() {
  static std::once_flag once;
  std::call_once(once, [] { ::prctl(PR_SET_CHILD_SUBREAPER, 1); });
}

struct process_stat {
  pid_t pid;
  char state;  // 'Z': a zombie, already ended
  pid_t parent;
  pid_t group;
};

// Every process's state, parent and process group, read from /proc (after the command name in
// parentheses, which may itself hold spaces and parentheses).
std::vector<process_stat> all_processes() {
  std::vector<process_stat> found;
  DIR* proc = ::opendir("/proc");
  if (!proc) return found;
  while (const dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const std::string path = std::string("/proc/") + e->d_name + "/stat";
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) continue;
    char text[512];
    const std::size_t n = std::fread(text, 1, sizeof text - 1, f);
    std::fclose(f);
    text[n] = '\0';
    const char* after_name = std::strrchr(text, ')');
    char state = 0;
    long parent = 0, group = 0;
    if (after_name && std::sscanf(after_name + 1, " %c %ld %ld", &state, &parent, &group) == 3) {
      found.push_back(
          {static_cast<pid_t>(pid), state, static_cast<pid_t>(parent), static_cast<pid_t>(group)});
    }
  }
  ::closedir(proc);
  return found;
}

std::vector<process_stat> own_children() {
  auto all = all_processes();
  const pid_t self = ::getpid();
  std::erase_if(all, [self](const process_stat& p) { return p.parent != self; });
  return all;
}

// Whether a process of the group still runs (one that already ended is no delivery going on).
bool group_running(pid_t group) {
  const auto all = all_processes();
  return std::any_of(all.begin(), all.end(),
                     [group](const process_stat& p) { return p.group == group && p.state != 'Z'; });
}

// Ends what the commands left behind outside their process groups, once no command runs (with
// --jobs, one still running may yet need what it started), and reaps it. Under the lock no
// command starts, so every child is one left behind. Killing one may hand its own children
// over to this process: a few rounds take those too.
// Whether any of them was still running.
bool end_left_behind() {
  std::lock_guard lock(spawning);
  if (any_group_running()) return false;
  bool running = false;
  for (int round = 0; round < 8; ++round) {
    const auto children = own_children();
    if (children.empty()) break;
    for (const auto& child : children) {
      running = running || child.state != 'Z';
      ::kill(-child.pid, SIGKILL);  // a daemon leads a group of its own after setsid
      ::kill(child.pid, SIGKILL);
    }
    for (const auto& child : children) {
      // SIGKILL is prompt; a process stuck in the kernel is not waited for past a second.
      for (int i = 0; i < 100 && ::waitpid(child.pid, nullptr, WNOHANG) == 0; ++i)
        ::usleep(10000);
    }
  }
  return running;
}

std::atomic<int> interrupted_by{0};
// remove_if_interrupted's file, in a buffer of its own: a signal handler may unlink(2) it but
// may not touch a std::string.
char file_to_remove[4096];

// The commands lead process groups of their own, so a Ctrl-C or a CI job's cancel reaches only
// this process. It passes a SIGTERM on to theirs (run_child follows with SIGKILL a second later,
// as at a timeout), and the run winds up with a report of what ran. A second signal does not
// wait.
extern "C" void end_commands(int sig) {
  const bool again = interrupted_by.exchange(sig) != 0;
  for (auto& slot : running_groups)
    if (pid_t g = slot.load()) kill(-g, again ? SIGKILL : SIGTERM);
  if (again) {
    if (file_to_remove[0] != '\0') unlink(file_to_remove);
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

const int interrupts[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" char** environ;

// The command's environment: ours with env's variables set, built before the spawn.
std::vector<std::string> child_environment(
    const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    const bool replaced =
        std::any_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == name; });
    if (!replaced) out.emplace_back(entry);
  }
  for (const auto& [k, v] : env)
    out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// posix_spawn, not fork and exec: this process runs server threads, and a forked child that
// allocates (setenv, vectors) before exec can block forever on a lock another thread held at
// the fork. Everything the child needs is built here, in the parent. The child leads its own
// process group (so a timeout kills all it started), with default signal handling and mask.
int spawn_child(const std::vector<std::string>& argv,
                const std::vector<std::pair<std::string, std::string>>& env, int input, int out,
                pid_t& pid) {
  auto args = argv;
  auto vars = child_environment(env);
  auto arg_ptrs = pointers_to(args);
  auto env_ptrs = pointers_to(vars);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  if (input >= 0) posix_spawn_file_actions_adddup2(&files, input, 0);
  posix_spawn_file_actions_adddup2(&files, out, 1);
  posix_spawn_file_actions_adddup2(&files, out, 2);
  // Nothing else of this process's: Asio opens its sockets without close-on-exec, and a command
  // holding a copy of another scenario's connection (--jobs) keeps it open after that server
  // closed it, so its client would never see the close.
  posix_spawn_file_actions_addclosefrom_np(&files, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD})
    sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int err = posix_spawnp(&pid, arg_ptrs[0], &files, &attr, arg_ptrs.data(), env_ptrs.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&files);
  return err;
}

// What the report keeps of a long output: its first quarter and the rest from its end.
constexpr std::size_t kept_head = max_output / 4, kept_tail = max_output - kept_head;

// Frees the part of the output file that no report will show, as the command writes it: a
// mailer that prints without end (a loop, `yes`) must not fill the disk. The start and the
// last kept_tail octets stay; the middle becomes a hole (the file keeps its size). A file
// system without holes keeps everything, as before.
void drop_cut_output(int fd) {
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0) return;
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size <= max_output + max_output / 4) return;  // not worth a system call yet
  fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(kept_head),
            static_cast<off_t>(size - kept_tail - kept_head));
}

// Waits for the child until the deadline or, when watching for one, an interrupt; false while
// it still runs. pidfd lets poll() do it without a busy loop; it polls in slices so that an
// interrupt is seen even when its signal went to another thread, and frees the cut output of
// output_fd between them.
bool wait_with_deadline(pid_t pid, std::chrono::milliseconds timeout, int& status,
                        bool stop_on_interrupt, int output_fd) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  for (auto now = clock::now(); now < deadline; now = clock::now()) {
    if (stop_on_interrupt && interrupted_by.load() != 0) break;
    // Short slices bound how much output piles up between two looks at it.
    auto slice = std::min(std::chrono::ceil<std::chrono::milliseconds>(deadline - now),
                          std::chrono::milliseconds(20));
    drop_cut_output(output_fd);
    if (pidfd < 0) {
      if (waitpid(pid, &status, WNOHANG) == pid) return true;
      usleep(5000);
    } else if (pollfd p{pidfd, POLLIN, 0}; poll(&p, 1, static_cast<int>(slice.count())) > 0) {
      break;
    }
  }
  if (pidfd >= 0) close(pidfd);
  return waitpid(pid, &status, WNOHANG) == pid;
}

// At most max_output of what the command printed: all of it, or its start and its end (where a
// failing mailer says why) with what was cut between them.
std::string read_capped(int fd) {
  auto read_at = [fd](off_t from, std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      ssize_t r = pread(fd, out.data() + got, n - got, from + static_cast<off_t>(got));
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
    return out;
  };
  struct stat st {};
  if (fstat(fd, &st) != 0) return {};
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size <= max_output) return read_at(0, size);
  return read_at(0, kept_head) + "\n[... " + std::to_string(size - kept_head - kept_tail) +
         " octets of output cut ...]\n" + read_at(static_cast<off_t>(size - kept_tail), kept_tail);
}

// Why the kernel would refuse to start the executable file at path, judged by its first line:
// a script whose #! names no runnable interpreter, or a file that is neither a script nor a
// program it knows. A file it cannot read (execute-only) is left to the kernel.
std::optional<std::string> unstartable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::nullopt;
  char head[256];
  const std::size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  const std::string_view start(head, n);
  if (start.starts_with("\x7f"
                        "ELF"))
    return std::nullopt;
  if (!start.starts_with("#!")) {
    return std::string(std::strerror(ENOEXEC)) + " (no #! line, and not a program)";
  }
  auto line = start.substr(0, start.find('\n')).substr(2);
  const auto first = line.find_first_not_of(" \t");
  if (first == std::string_view::npos) return std::string("its #! line names no interpreter");
  line.remove_prefix(first);
  const std::string interpreter(line.substr(0, line.find_first_of(" \t")));
  if (interpreter.ends_with('\r')) {
    return "its #! line ends with CR, which the kernel takes as part of the interpreter's name"
           " (a file saved with Windows line ends)";
  }
  if (::access(interpreter.c_str(), X_OK) != 0) {
    return "its #! interpreter " + interpreter + ": " + std::strerror(errno);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> unrunnable(const std::string& program) {
  const auto why_not = [](const std::string& path) -> std::optional<std::string> {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
    if (S_ISDIR(st.st_mode)) return std::string("it is a folder, not a program");
    if (::access(path.c_str(), X_OK) != 0) return std::strerror(errno);
    return std::nullopt;
  };
  if (program.empty()) return std::string("cannot run an empty command name");
  if (program.find('/') != std::string::npos) {
    if (auto why = why_not(program)) return "cannot run " + program + ": " + *why;
    if (auto why = unstartable(program)) return "cannot run " + program + ": " + *why;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (!why_not(candidate)) {
      if (auto why = unstartable(candidate)) return "cannot run " + candidate + ": " + *why;
      return std::nullopt;
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return "cannot run " + program + ": not found in PATH";
}

child_result run_child(const std::vector<std::string>& argv,
                       const std::vector<std::pair<std::string, std::string>>& env,
                       std::chrono::milliseconds timeout) {
  child_result result;
  if (argv.empty()) {
    result.error = "no command to run";
    return result;
  }
  std::string path = temp_folder() + "/smtpfault-output-XXXXXX";
  // Close-on-exec: the child gets it only as its stdout and stderr.
  int out = mkostemp(path.data(), O_CLOEXEC);
  if (out < 0) {
    result.error = "cannot create a temporary file in " + path.substr(0, path.rfind('/')) +
                   " for the command's output: " + std::strerror(errno);
    return result;
  }
  unlink(path.c_str());
  // Not the runner's own stdin when its copy cannot be opened: that one is read already.
  const int input = open_shared_input();
  if (input == -2) {
    close(out);
    result.error = shared_input_error();
    return result;
  }
  pid_t pid = 0;
  adopt_orphans();
  // No interrupt between the spawn and the record of the group: it would miss the command.
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : interrupts)
    sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int spawn_error = 0;
  {
    std::lock_guard lock(spawning);
    spawn_error = spawn_child(argv, env, input, out, pid);
    if (spawn_error == 0) remember_group(pid);
  }
  if (input >= 0) close(input);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // Interrupted on another thread before the group was recorded: end it here.
  if (spawn_error == 0 && interrupted_by.load() != 0) kill(-pid, SIGTERM);
  if (int err = spawn_error; err != 0) {
    close(out);
    // A command that cannot be run is a mistake in the test run, not a mailer that failed (a
    // scenario expecting the mailer to fail would otherwise pass).
    result.error = "cannot run " + argv.front() + ": " + std::strerror(err);
    return result;
  }
  int status = 0;
  if (!wait_with_deadline(pid, timeout, status, true, out)) {
    // At the timeout, or after an interrupt (whose handler sent SIGTERM already): a second to
    // clean up, then SIGKILL.
    result.timed_out = interrupted_by.load() == 0;
    kill(-pid, SIGTERM);
    if (!wait_with_deadline(pid, std::chrono::milliseconds(1000), status, false, out)) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
  // Anything the command left running in its group.
  result.left_processes = group_running(pid);
  kill(-pid, SIGKILL);
  forget_group(pid);
  result.left_processes = end_left_behind() || result.left_processes;
  if (result.timed_out) {
    result.exit_code = -1;
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    result.signal = crash_reported_by_shell(result.exit_code);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = 128 + result.signal;
  }
  result.output = read_capped(out);
  close(out);
  return result;
}

// A command run through a shell or a wrapper script (`sh -c 'mailer'`, `./send.sh`) that
// crashed comes back as a normal exit with status 128 + the signal, as the shell reports it.
// Only the signals of a crash count: 130 (SIGINT) or 143 (SIGTERM) may be a deliberate status,
// and a program choosing 139 on its own is far rarer than a wrapped one that segfaulted.
int crash_reported_by_shell(int exit_code) {
  const int sig = exit_code - 128;
  for (int crash : {SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS})
    if (sig == crash) return sig;
  return 0;
}

int interrupting_signal() {
  return interrupted_by.load();
}

std::string interruption() {
  const int sig = interrupted_by.load();
  return sig ? std::string("interrupted by SIG") + sigabbrev_np(sig) : std::string();
}

// As other tools do.
std::string temp_folder() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir && *tmpdir ? tmpdir : "/tmp";
}

void remove_if_interrupted(const std::string& path) {
  file_to_remove[0] = '\0';  // never half a path, should a signal come in between
  if (path.empty() || path.size() >= sizeof file_to_remove) return;
  std::memcpy(file_to_remove + 1, path.c_str() + 1, path.size());
  file_to_remove[0] = path[0];
}

void die_of_interrupt() {
  if (int sig = interrupted_by.load()) {
    if (file_to_remove[0] != '\0') unlink(file_to_remove);
    std::fflush(nullptr);  // the report table, when stdout is a file or a pipe
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

void end_commands_on_interrupt() {
  struct sigaction sa {};
  sa.sa_handler = end_commands;
  sigemptyset(&sa.sa_mask);
  for (int sig : interrupts)
    sigaction(sig, &sa, nullptr);
}

}  // namespace smtpfault::app
