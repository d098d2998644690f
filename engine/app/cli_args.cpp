#include "app/cli_args.hpp"

#include <algorithm>

namespace smtpfault::app {

std::optional<std::string> parse_args(const std::vector<std::string>& args,
                                      const std::vector<std::string_view>& booleans,
                                      parsed_args& out) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.after_dashes.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      return std::nullopt;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      if (a.size() > 1 && a[0] == '-' && a != "-") return "unknown option '" + a + "'";
      out.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    auto eq = name.find('=');
    if (eq != std::string::npos) {
      out.flags.push_back({name.substr(0, eq), name.substr(eq + 1)});
      continue;
    }
    if (std::find(booleans.begin(), booleans.end(), name) != booleans.end()) {
      out.flags.push_back({name, ""});
      continue;
    }
    if (i + 1 >= args.size()) {
      out.value_missing = name;
      out.flags.push_back({name, ""});
      break;
    }
    out.flags.push_back({name, args[++i]});
  }
  return std::nullopt;
}

std::optional<std::string> missing_value_error(const parsed_args& args) {
  if (!args.value_missing) return std::nullopt;
  return "option --" + *args.value_missing + " needs a value";
}

}  // namespace smtpfault::app
