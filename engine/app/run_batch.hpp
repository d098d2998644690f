// `smtpfault run` with several scripts: which ones a command line names, and what they came to
// together (one verdict, one exit status, one summary, one report).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "app/run_outcome.hpp"
#include "app/test_report.hpp"
#include "proto/expected.hpp"

namespace smtpfault::app {

struct named_scripts {
  std::vector<std::string> names;  // in the order they run
  // More than one name, a folder or a glob: the reports take a batch's form even when it came
  // to one script, so that a folder that shrinks to one file does not change their shape.
  bool batch = false;
};

// Each name as given; a folder as its .lua files in name order; a glob with a '/' or ending in
// .lua as the files it matches; any other glob as the built-in probes it matches ('probe-*').
proto::expected<named_scripts, std::string> scripts_named(const std::vector<std::string>& args);

// The same script named twice (a name, a folder holding it, a glob matching it) runs once:
// removes the later ones and returns them.
std::vector<std::string> drop_repeats(std::vector<std::string>& names);

// An error is the worst, then a failure; all skipped is skipped.
const char* batch_verdict(const std::vector<script_outcome>& runs);
// An interrupt's status, else 2 before 3 before 1 (the reason to look at first), else 0.
int batch_exit_status(const std::vector<script_outcome>& runs);

// After the scripts: a line each and the counts (text), or one JSON line.
void print_batch_summary(const std::vector<script_outcome>& runs,
                         const std::vector<std::string>& not_run, const run_context& ctx,
                         bool json_lines, int status);

// A suite per script (named by its path where two scripts share a file name), and one with a
// skipped case for each script an interrupt left unrun.
std::vector<junit_suite> batch_junit(const std::vector<script_outcome>& runs,
                                     const std::vector<std::string>& not_run);
boost::json::object batch_json(const std::vector<script_outcome>& runs,
                               const std::vector<std::string>& not_run, const run_context& ctx,
                               int status);

}  // namespace smtpfault::app
