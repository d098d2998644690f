// A small, strict command-line reader: "--flag value", "--flag=value" and boolean "--flag".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpfault::app {

struct flag_value {
  std::string name;   // without the leading dashes
  std::string value;  // "" for a boolean flag
  // How messages name it: "--timeout", or the TOML key or variable it came from.
  std::string origin;
};

struct parsed_args {
  std::vector<flag_value> flags;
  std::vector<std::string> positional;
  std::vector<std::string> after_dashes;  // everything after a lone "--"
};

// The flags a command takes, without their dashes.
struct flag_set {
  std::vector<std::string> booleans;  // take no value: "--quiet"
  std::vector<std::string> valued;    // take one: "--from X" or "--from=X"
};

// Returns a message ready to print for an unknown flag (with the nearest known one, if any is
// near), a flag that needs a value and was given none, or a stray "-x".
std::optional<std::string> parse_args(const std::vector<std::string>& args, const flag_set& known,
                                      parsed_args& out);

// What a client-side command takes from configuration besides its command line.
struct configurable_flags {
  std::string_view command;                // "send": [send] in the file, SMTPFAULT_SEND_*
  std::vector<std::string> repeatable;     // valued flags that may come more than once
  std::vector<std::string> left_out = {};  // covered by the server's keys (test's --seed)
};

// Puts the command's flags from its table in the TOML file (--config, else SMTPFAULT_CONFIG)
// and from its SMTPFAULT_<COMMAND>_* variables before the command line's own; a flag given on
// the command line replaces them. help, version, config and set are never configuration.
// Returns the error, which names the file, line and key, or the variable.
std::optional<std::string> add_configured_flags(const configurable_flags& which,
                                                const flag_set& known, char** envp,
                                                parsed_args& args);

}  // namespace smtpfault::app
