// Reports of a `smtpfault test` run: the terminal table, JUnit XML and JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "app/test_runner.hpp"

namespace smtpfault::app {

void print_table(const std::vector<scenario_result>& results, bool colour, std::uint64_t seed);
// What the run's results say together, beyond each scenario's own reason (a habit of the
// mailer's seen in many of them): printed under the table, and kept in both reports.
std::vector<std::string> run_notes(const std::vector<scenario_result>& results);

// Escapes a result's name, reason and check details once, as the transcript is: the table and
// both reports then show the same words.
void escape_for_reports(scenario_result& r);
// Says on stderr which scenario parameters none of the scenarios run names (misspelt?).
void note_unread_params(const std::vector<scenario_result>& results);
// 2 for an error (a scenario's, the runner's, a report lost), else 1 for a failure, else 0.
int test_exit_status(const std::vector<scenario_result>& results, bool reports_written);

// Both return an error message when the file cannot be written.
// The seed goes into the suite's properties, so that a failure in CI can be replayed; a run
// refused before it chose one has none (JSON null, no property). The suite
// and class names tell merged reports apart (`run` names them after its script).
struct junit_names {
  std::string suite = "smtpfault";
  std::string class_name = "smtpfault.scenarios";
  // The suite's time: the run's own from start to end (cases run side by side with --jobs);
  // below 0, the sum of the cases'.
  double seconds = -1;
};
// Writes a report whole or not at all (a regular file is replaced by a rename); the error names
// the path.
std::optional<std::string> write_report_file(const std::string& path, const std::string& text);
// Why a report could not be written to path, if it could not (found before a run, nothing is
// created): its folder is missing, or neither the file nor (for a new file) the folder is
// writable.
std::optional<std::string> unwritable_report(const std::string& path);
// --junit and --json naming one file (by two spellings too): the second report would replace
// the first without a word.
std::optional<std::string> one_file_for_both_reports(const std::string& junit,
                                                     const std::string& json);

std::optional<std::string> write_junit(const std::string& path,
                                       const std::vector<scenario_result>& results,
                                       std::optional<std::uint64_t> seed,
                                       const junit_names& names = {});
// Several suites in one report (`run` with several scripts: a suite per script).
struct junit_suite {
  junit_names names;
  std::vector<scenario_result> results;
};
std::optional<std::string> write_junit_suites(const std::string& path,
                                              const std::vector<junit_suite>& suites,
                                              std::optional<std::uint64_t> seed);
std::optional<std::string> write_json(const std::string& path,
                                      const std::vector<scenario_result>& results,
                                      std::optional<std::uint64_t> seed);

// XML text with the five entities escaped and characters XML 1.0 forbids replaced.
std::string xml_escape(std::string_view text);

}  // namespace smtpfault::app
