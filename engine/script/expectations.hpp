// Expectations about the client under test (`expect { ... }` in a scenario), evaluated when a
// `smtpfault test` run ends, against the sessions the server saw and the command's exit status.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capture/session_analysis.hpp"

namespace smtpfault::script {

struct count_range {
  std::optional<std::uint64_t> min;
  std::optional<std::uint64_t> max;
};

struct expectations {
  std::optional<count_range> delivered;
  std::optional<bool> quit;
  std::optional<bool> starttls_before_auth;
  std::optional<bool> no_plaintext_auth;
  std::optional<bool> no_plaintext_after_tls_failure;
  std::optional<bool> retried_after_4xx;
  std::optional<double> retry_delay_min;  // seconds of scenario time
  std::optional<double> retry_delay_max;
  std::optional<bool> no_retry_after_5xx;
  std::optional<bool> dot_stuffing;
  std::optional<bool> line_length;
  std::optional<bool> line_endings;
  std::optional<bool> pipelining;
  // "success", "failure" or a number: one for every run, or one per run; none: not checked.
  std::vector<std::string> exit;
  unsigned runs = 1;        // how many times the command runs against one server
  double run_gap = 0;       // seconds of scenario time between runs
  std::vector<int> checks;  // Lua functions (registry refs) for custom checks

  bool empty() const;
};

struct run_outcome {
  std::vector<capture::session_summary> sessions;  // in the order they started
  std::vector<int> exit_codes;                     // per run; -1 = killed at the timeout
  std::vector<int> exit_signals;                   // per run: the signal that killed it, or 0
  bool left_processes = false;  // a run exited with processes still running, ended with it
  std::size_t messages = 0;
  std::vector<std::shared_ptr<const capture::stored_message>> stored;  // for custom checks
  double time_scale = 1.0;
  // Under `test`, when each run of the command started (runs = n); empty for serve's API. A
  // session belongs to the last run started before it.
  std::vector<std::chrono::system_clock::time_point> run_starts;
};

// What failed in the scenario's hooks (the scenario's mistake, not the client's), or nullopt:
// the first error with its session, then each other error once with where it happened
// ("a.lua:3: boom (session 000001 and 2 more); a.lua:9: nil (session 000004)").
std::optional<std::string> failed_hooks(const run_outcome& run);

// The run (1-based) that was going on at t; 1 when there are no runs to tell apart.
std::size_t run_at(const run_outcome& run, std::chrono::system_clock::time_point t);

struct check_result {
  std::string name;
  bool passed = true;
  std::string detail;         // what was expected, what happened, where to look
  bool script_error = false;  // a custom check that failed to run, or a hook that failed: the
                              // scenario's fault
  bool waived = false;        // set aside by the run (test --waive): it decides nothing
};

// The built-in expectations; custom Lua checks are run by the scenario.
std::vector<check_result> evaluate(const expectations& e, const run_outcome& run);

// The built-in checks a run may set aside (test --waive): how the mailer speaks (its lines, its
// pipelining, its QUIT), which a library may get wrong in every scenario alike. Not what it
// decides (retries, TLS, AUTH, its exit status, what it delivers): those are the point of
// their scenarios, which --exclude leaves out instead; nor a scenario's custom checks.
const std::vector<std::string>& waivable_checks();

// What the quit check adds when a session closed right after its TLS handshake
// (capture::closed_right_after_tls): the likely cause, a refused certificate.
inline constexpr std::string_view closed_after_handshake_hint =
    "; it closed right after the TLS handshake, most likely refusing the server's certificate "
    "(its output says): a CA it was not given ($SMTP_CA_FILE), or a name it checks; a client "
    "that matches host names only, not IP addresses, must connect to localhost, not 127.0.0.1";

// "SIGSEGV" (or "signal 64"): how a report names the signal that killed the command.
std::string signal_name(int sig);

}  // namespace smtpfault::script
