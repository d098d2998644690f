// Reading settings from TOML, the environment and flags. Never throws: errors are values that
// name where the bad value came from (file:line:key, environment variable or flag).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/settings.hpp"
#include "proto/expected.hpp"

namespace smtpfault::config {

struct config_error {
  std::string message;  // complete, ready to print: "smtpfault.toml:12: key 'listen': ..."
};

// A flag's spelling of a key, and back: "tls-listen" <-> "tls_listen".
std::string key_of_flag(std::string_view flag);
std::string flag_of_key(std::string_view key);
// The KEY of a KEY=VALUE value ("user=bob" -> "user"), as repeated --param values are told apart.
std::string_view key_of_pair(std::string_view key_value);

// true/false/1/0/yes/no in any case, as boolean keys take them; nullopt for anything else.
std::optional<bool> parse_bool(std::string_view text);

// Parses "host:port" / "[v6]:port".
proto::expected<endpoint, std::string> parse_endpoint(std::string_view text);
// The same for an address to connect to: port 0 is refused.
proto::expected<endpoint, std::string> parse_target(std::string_view text);

// Applies a TOML file on top of s. Unknown keys, wrong types and bad values are errors.
proto::expected<bool, config_error> apply_file(settings& s, const std::string& path);

// The same for TOML text already in memory; name stands for the file in messages.
proto::expected<bool, config_error> apply_document(settings& s, std::string_view toml_text,
                                                   const std::string& name);

// Applies SMTPFAULT_* variables from envp (a NULL-terminated environ array).
proto::expected<bool, config_error> apply_environment(settings& s, char** envp);

// Applies one key given as text, as a flag would: key is the TOML path ("listen",
// "limits.command_line"); origin names the source for messages ("--listen"). A list key takes a
// comma-separated list and replaces the current value (the CLI joins repeated flags).
proto::expected<bool, config_error> apply_text(settings& s, std::string_view key,
                                               std::string_view value, std::string_view origin);

// The documented keys, for --help and docs: TOML path, environment variable, description.
struct key_info {
  std::string path;
  std::string env;
  std::string type;
  std::string help;
  bool list = false;          // takes several values: given twice, they add up
  std::string default_value;  // as a flag would write it; "" when there is none to show
};
const std::vector<key_info>& known_keys();
// " (did you mean 'x'?)" when a candidate is a plausible typo of word, else "" (for flags).
std::string suggestion(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace smtpfault::config
