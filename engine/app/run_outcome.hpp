// What one client script's run came to (`smtpfault run`): its verdict and exit status, its
// printed summary, and its parts of the JUnit and JSON reports.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "app/test_report.hpp"
#include "net/script_client.hpp"
#include "script/client_script.hpp"

namespace smtpfault::app {

// Exit statuses of `smtpfault run`.
constexpr int exit_pass = 0, exit_fail = 1, exit_script = 2, exit_target = 3;

struct script_outcome {
  std::string name;     // as people know it: "probe-bdat", "checks/helo.lua"
  std::string verdict;  // pass, fail, skipped or error
  int exit_status = exit_pass;
  std::string error;  // what ended the run early, if anything did
  int passed = 0, failed = 0, skipped = 0;
  double seconds = 0;
  bool interrupted = false;
  std::vector<scenario_result> junit_cases;
  junit_names junit;
  boost::json::object json;  // the --json report of this script alone
};

// Where and how a run goes: what the reports say about it besides the script's own results.
struct run_context {
  std::string target;  // "127.0.0.1:2525 (implicit TLS 127.0.0.1:2465)"
  std::uint64_t seed = 0;
};

script_outcome outcome_of(const net::client_run_result& r, const script::client_script& s,
                          const run_context& ctx);
// A script that did not load: an error with the reports CI looks for (a missing file would
// pass unnoticed in some CI views).
script_outcome load_error_outcome(const std::string& script, const std::string& error,
                                  const run_context& ctx);

// JUnit names after the script ("probe-pipelining", "mailer-checks"), so that the reports of
// several runs stay apart when a CI view merges them; by its path ("checks/smoke") where two
// scripts share a file name.
junit_names junit_names_of(const std::string& script_name);
junit_names junit_names_of_path(const std::string& script_name);

// After the transcript: the verdicts, the report values and the summary line, as text or as
// JSON lines; what ended the run early goes to stderr either way.
void print_summary(const net::client_run_result& r, const script::client_script& s);
void print_summary_json(const net::client_run_result& r, const script::client_script& s);

}  // namespace smtpfault::app
