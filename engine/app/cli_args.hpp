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

}  // namespace smtpfault::app
