// A small, strict command-line reader: "--flag value", "--flag=value" and boolean "--flag".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/command_keys.hpp"
#include "config/settings.hpp"
#include "proto/expected.hpp"

namespace smtpfault::app {

struct flag_value {
  std::string name;   // without the leading dashes
  std::string value;  // a boolean flag: "" when on, "false" when switched off (--lmtp=false)
  // How messages name it: "--timeout", or the TOML key or variable it came from.
  std::string origin;

  // The flag with its value, for a message about the value: "--data msg.eml", or
  // "mail.toml:3:8: key 'send.data' = 'msg.eml'".
  std::string with_value() const {
    return origin.starts_with("--") ? origin + " " + value : origin + " = '" + value + "'";
  }
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
// near), a flag that needs a value and was given none, or a stray "-x": the first of them. The
// arguments after a mistake are read too, so out holds every flag that could be read.
std::optional<std::string> parse_args(const std::vector<std::string>& args, const flag_set& known,
                                      parsed_args& out);

// The configuration file a command reads: --config's value (--config '' for none), else
// SMTPFAULT_CONFIG; from_environment lets messages say where the name came from.
struct configuration_file {
  std::string path;  // "" for none
  bool from_environment = false;
};
configuration_file configuration_file_of(const parsed_args& args);

// Seconds for a deadline: a finite number above 0 and at most a year (more would overflow the
// clock's arithmetic). Returns the message after "ORIGIN: " when text is none of that.
proto::expected<double, std::string> parse_seconds(const std::string& text);
// A seed or count: decimal digits only, within 64 bits (no sign, no wrap-around).
std::optional<std::uint64_t> parse_whole_number(const std::string& text);

// What a client-side command takes from configuration besides its command line.
struct configurable_flags {
  std::string_view command;             // "send": [send] in the file, SMTPFAULT_SEND_*
  std::vector<std::string> repeatable;  // valued flags that may come more than once
  std::vector<std::string> numbers;     // valued flags that take a number (TOML integer/float)
  std::vector<std::string> integers;    // of numbers: whole ones only
  // Flags covered by the server's top-level keys (test's --seed is the key seed).
  std::vector<std::string> left_out = {};
  // Repeatable KEY=VALUE flags (run's --param): one on the command line replaces the
  // configuration's value of its KEY only.
  std::vector<std::string> keyed = {};
  // Flags that choose the same thing (test's --scenario and --scenarios): one on the command
  // line replaces the configuration's values of all of them.
  std::vector<std::string> alternatives = {};
  // Repeatable flags whose configured values stand beside the command line's (test's exclude,
  // a standing policy): one on the command line adds to them.
  std::vector<std::string> added = {};
};

// The keys of the command's table in the configuration file: its flags but help, version,
// config, set and the left-out ones.
config::command_keys configuration_keys(const configurable_flags& which, const flag_set& known);

// Puts the command's flags from its table in the TOML file (--config, else SMTPFAULT_CONFIG)
// and from its SMTPFAULT_<COMMAND>_* variables before the command line's own; a flag given on
// the command line replaces them. help, version, config and set are never configuration.
// Returns the error, which names the file, line and key, or the variable. The whole file is
// read as the server reads it, to find its mistakes; `file_settings`, when given, gets what it
// set (run takes its Lua limits from there).
std::optional<std::string> add_configured_flags(const configurable_flags& which,
                                                const flag_set& known, char** envp,
                                                parsed_args& args,
                                                config::settings* file_settings = nullptr);

// The SMTPFAULT_* variables that are the server's settings, applied onto `onto` as serve
// applies them, for a command that uses few or none of them (send, run): a misspelt
// SMTPFAULT_SEDN_TO would otherwise be ignored without a word.
std::optional<std::string> check_server_variables(char** envp, config::settings& onto);

}  // namespace smtpfault::app
