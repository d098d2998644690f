// Running the command under test: its own process group (so a timeout kills everything it
// started), extra environment variables, output captured to a file.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace smtpfault::app {

struct child_result {
  int exit_code = -1;  // 128 + signal when killed by one; -1 = killed at the timeout
  int signal = 0;      // the signal that killed it, or a shell's 128 + n of a crash; else 0
  bool timed_out = false;
  // It exited with processes of its own still running (a delivery handed to `cmd &`, a
  // daemon): they were ended with it.
  bool left_processes = false;
  std::string output;  // stdout and stderr, interleaved; at most 1 MiB, its start and its end
  std::string error;   // could not start it
};

// From now on SIGINT, SIGTERM and SIGHUP kill every command run_child is running (each leads
// its own process group, out of reach of a Ctrl-C), and every one it starts later; the caller
// sees interrupting_signal() and winds up, then calls die_of_interrupt(). A second signal ends
// this process at once.
void end_commands_on_interrupt();
int interrupting_signal();  // 0 until one came
// The crash signal (SIGSEGV, SIGABRT ...) a shell means by exit status 128 + n, else 0.
int crash_reported_by_shell(int exit_code);
// "interrupted by SIGINT", for the reports (empty before an interrupt).
std::string interruption();
// Ends this process as the signal would have (exit status 128 + signal to a shell).
void die_of_interrupt();
// Where the user keeps temporary files: TMPDIR, else /tmp.
std::string temp_folder();
// A file of the run's own (the test CA written out for the commands) that an end by signal
// removes as well: a second signal ends the process at once, with no destructor run. One at a
// time; "" forgets it.
void remove_if_interrupted(const std::string& path);

// Why program cannot be started, as posix_spawnp would find it (a path, or a name looked up
// in PATH), if it cannot: asked once before a run, so that a misspelt command is one error,
// not the same error for every scenario.
std::optional<std::string> unrunnable(const std::string& program);

child_result run_child(const std::vector<std::string>& argv,
                       const std::vector<std::pair<std::string, std::string>>& env,
                       std::chrono::milliseconds timeout);

}  // namespace smtpfault::app
