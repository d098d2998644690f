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
  // A last flag that is not a boolean but has no value ("--from" at the end). It is in `flags`
  // with "" too, so that the command can first say whether it knows the flag at all.
  std::optional<std::string> value_missing;
};

// booleans: flags that take no value. Returns an error message for a stray "-x".
std::optional<std::string> parse_args(const std::vector<std::string>& args,
                                      const std::vector<std::string_view>& booleans,
                                      parsed_args& out);

// "option --from needs a value" when args.value_missing; for a command to return once it has
// rejected the flags it does not know.
std::optional<std::string> missing_value_error(const parsed_args& args);

}  // namespace smtpfault::app
