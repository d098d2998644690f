#include "app/cli_args.hpp"

#include <algorithm>

#include "config/loader.hpp"

namespace smtpfault::app {

namespace {

bool listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string unknown_flag(const std::string& name, const flag_set& known) {
  std::vector<std::string> candidates;
  for (const auto* names : {&known.booleans, &known.valued})
    for (const auto& n : *names)
      candidates.push_back("--" + n);
  std::string hint = config::suggestion("--" + name, candidates);
  return "unknown option --" + name + hint;
}

}  // namespace

std::optional<std::string> parse_args(const std::vector<std::string>& args, const flag_set& known,
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
    std::optional<std::string> value;
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (listed(known.booleans, name)) {
      out.flags.push_back({name, value.value_or("")});
    } else if (!listed(known.valued, name)) {
      return unknown_flag(name, known);
    } else if (value) {
      out.flags.push_back({name, *value});
    } else if (i + 1 < args.size()) {
      out.flags.push_back({name, args[++i]});
    } else {
      return "option --" + name + " needs a value";
    }
  }
  return std::nullopt;
}

}  // namespace smtpfault::app
