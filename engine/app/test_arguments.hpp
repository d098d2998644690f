// What `smtpfault test` was asked to do: its flags, its configuration's, and the command.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/cli_args.hpp"
#include "app/server_setup.hpp"
#include "app/test_runner.hpp"

namespace smtpfault::app {

struct parsed_test {
  test_options opts;
  std::vector<std::string> scenarios;
  bool scenarios_on_command_line = false;  // then they replace the configuration's choice
  // --exclude: names, file names or globs; whether each was given on the command line.
  // Each exclusion's pattern, and where it was given ("--exclude", a file's key, a variable).
  std::vector<std::pair<std::string, std::string>> excluded;
  std::string junit, json;
  unsigned jobs = 1;
  bool seed_given = false;
  bool time_scale_given = false;
  configuration_file config;       // --config, else SMTPFAULT_CONFIG
  std::vector<setting_text> sets;  // --set KEY=VALUE
};

void print_test_help();

// Returns an error message, or "" with p filled; "help"/"version" for those flags.
std::string parse_test_arguments(const std::vector<std::string>& argv, char** envp, parsed_test& p);

// The scenario servers' configuration, as serve reads it: file, SMTPFAULT_* variables, --set.
std::optional<std::string> read_test_settings(parsed_test& p, char** envp);

}  // namespace smtpfault::app
