// The flags of the client-side commands in one place: each command parses its command line with
// them and reads its table of the configuration file with them, and serve checks those tables
// and variables with them, so a slip in [healthcheck] is found when the server starts.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "app/cli_args.hpp"

namespace smtpfault::app {

struct command_flags {
  flag_set flags;
  configurable_flags config;
  // The command's own check of its flags' values, without running it or looking at files.
  std::optional<std::string> (*check_values)(const std::vector<flag_value>&);
};

// Beside each command.
std::optional<std::string> check_send_values(const std::vector<flag_value>& flags);
std::optional<std::string> check_run_values(const std::vector<flag_value>& flags);
std::optional<std::string> check_test_values(const std::vector<flag_value>& flags);
std::optional<std::string> check_healthcheck_values(const std::vector<flag_value>& flags);

const command_flags& send_flags();
const command_flags& run_flags();
const command_flags& test_flags();
const command_flags& healthcheck_flags();
const command_flags& check_flags();

// The error in the commands' tables of the file (none when file is empty) or in their
// SMTPFAULT_<COMMAND>_* variables, if any: names, types and values.
std::optional<std::string> check_commands_configuration(const std::string& file, char** envp);

}  // namespace smtpfault::app
