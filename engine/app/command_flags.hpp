// The flags of the client-side commands in one place: each command parses its command line with
// them and reads its table of the configuration file with them, and serve checks those tables
// and variables with them, so a slip in [healthcheck] is found when the server starts.
#pragma once

#include <optional>
#include <string>

#include "app/cli_args.hpp"

namespace smtpfault::app {

struct command_flags {
  flag_set flags;
  configurable_flags config;
};

const command_flags& send_flags();
const command_flags& run_flags();
const command_flags& test_flags();
const command_flags& healthcheck_flags();

// The error in the commands' tables of the file (none when file is empty) or in their
// SMTPFAULT_<COMMAND>_* variables, if any.
std::optional<std::string> check_commands_configuration(const std::string& file, char** envp);

}  // namespace smtpfault::app
