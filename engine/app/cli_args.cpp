#include "app/cli_args.hpp"

#include <algorithm>
#include <cstdlib>

#include "config/command_keys.hpp"
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
      out.flags.push_back({name, value.value_or(""), "--" + name});
    } else if (!listed(known.valued, name)) {
      return unknown_flag(name, known);
    } else if (value) {
      out.flags.push_back({name, *value, "--" + name});
    } else if (i + 1 < args.size()) {
      out.flags.push_back({name, args[++i], "--" + name});
    } else {
      return "option --" + name + " needs a value";
    }
  }
  return std::nullopt;
}

std::optional<std::string> add_configured_flags(const configurable_flags& which,
                                                const flag_set& known, char** envp,
                                                parsed_args& args) {
  // --help and --version answer even when the configuration has a mistake.
  for (const auto& f : args.flags)
    if (f.name == "help" || f.name == "version") return std::nullopt;
  config::command_keys keys{which.command, {}, {}, which.repeatable};
  auto configurable = [&](const std::string& name) {
    return !listed({"help", "version", "config", "set"}, name) && !listed(which.left_out, name);
  };
  for (const auto& name : known.booleans)
    if (configurable(name)) keys.booleans.push_back(name);
  for (const auto& name : known.valued)
    if (configurable(name)) keys.valued.push_back(name);
  std::string file;
  for (const auto& f : args.flags)
    if (f.name == "config") file = f.value;
  if (const char* env = std::getenv("SMTPFAULT_CONFIG"); file.empty() && env) file = env;
  auto configured = config::read_command_flags(keys, file, envp);
  if (!configured) return configured.error().message;
  std::vector<flag_value> merged;
  for (auto& c : *configured) {
    const bool on_command_line = std::any_of(args.flags.begin(), args.flags.end(),
                                             [&](const flag_value& f) { return f.name == c.name; });
    if (!on_command_line) merged.push_back({c.name, c.value, c.origin});
  }
  merged.insert(merged.end(), args.flags.begin(), args.flags.end());
  args.flags = std::move(merged);
  return std::nullopt;
}

}  // namespace smtpfault::app
