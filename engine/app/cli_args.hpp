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

// booleans: flags that take no value. Returns an error message for a flag missing its value.
std::optional<std::string> parse_args(const std::vector<std::string>& args,
                                      const std::vector<std::string_view>& booleans,
                                      parsed_args& out);

}  // namespace smtpfault::app
