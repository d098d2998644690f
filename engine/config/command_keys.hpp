// The client-side commands' flags as configuration: `smtpfault send --timeout 5` can also come
// from the TOML file's [send] table (`timeout = 5`) or from SMTPFAULT_SEND_TIMEOUT=5; likewise
// [run] and SMTPFAULT_RUN_*, [test] and SMTPFAULT_TEST_*, [healthcheck] and
// SMTPFAULT_HEALTHCHECK_*, [check] and SMTPFAULT_CHECK_*. The server's own reader leaves these
// tables and variables alone.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/loader.hpp"
#include "proto/expected.hpp"

namespace smtpfault::config {

// What one command takes from configuration, spelt as its flags are ("tls-target"); the TOML
// key and the variable use '_' for '-' ("tls_target", SMTPFAULT_RUN_TLS_TARGET).
struct command_keys {
  std::string_view command;  // "send": the table [send], the variables SMTPFAULT_SEND_*
  std::vector<std::string> booleans;
  std::vector<std::string> valued;
  std::vector<std::string> repeatable;  // valued flags that may be given more than once
  std::vector<std::string> numbers;     // valued flags that take a number; the rest take text
  std::vector<std::string> integers;    // of numbers: whole ones only
  // Flags the command takes from the server's top-level keys instead ("seed"): a key of that
  // name in the command's table is refused with a pointer to the top-level one.
  std::vector<std::string> top_level;
  // As in app::configurable_flags: a variable replaces the file's values of its KEY only
  // (keyed), or of every flag in the group (alternatives).
  std::vector<std::string> keyed = {};
  std::vector<std::string> alternatives = {};
};

struct configured_flag {
  std::string name;    // the flag it stands for: "tls-target"
  std::string value;   // "" for a boolean flag that is on
  std::string origin;  // for messages: "mail.toml:3:1: key 'run.timeout'"
};

// The command's table in the TOML file at path (none when path is empty), then its variables
// in envp; a variable replaces the file's values of its key. A boolean that is off is left out.
// A repeatable flag takes a TOML array or a comma-separated variable. Unknown keys, unknown
// variables and values of the wrong type are errors that name where they are.
proto::expected<std::vector<configured_flag>, config_error> read_command_flags(
    const command_keys& keys, const std::string& path, char** envp);

// Whether a top-level TOML key or an SMTPFAULT_* variable belongs to one of the commands.
bool is_command_table(std::string_view key);
bool is_command_variable(std::string_view name);
// " (SMTPFAULT_HEALTHCHEK_ reads like SMTPFAULT_HEALTHCHECK_, ...)" for a variable whose
// command word is a slip ("SMTPFAULT_HEALTHCHEK_TIMEOUT"); "" otherwise.
std::string command_variable_hint(std::string_view name);

}  // namespace smtpfault::config
