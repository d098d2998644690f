#include "app/cli_args.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "app/command_flags.hpp"
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
  // --cert: the one flag that ends in it (--tls-cert), before any near spelling (--set).
  std::vector<std::string> ending;
  for (const auto& c : candidates)
    if (c.ends_with("-" + name)) ending.push_back(c);
  if (ending.size() == 1)
    return "unknown option --" + name + " (did you mean '" + ending[0] + "'?)";
  std::string hint = config::suggestion("--" + name, candidates);
  // As other tools have it (test --list): the catalogue has a command of its own.
  if (hint.empty() && (name == "list" || name == "list-scenarios"))
    hint = " (the scenarios are listed by 'smtpfault list')";
  return "unknown option --" + name + hint;
}

}  // namespace

std::optional<std::string> parse_args(const std::vector<std::string>& args, const flag_set& known,
                                      parsed_args& out) {
  // The first mistake is the one said; the arguments after it are still read, so that a caller
  // can act on what it needs even then (test writes its refusal to the reports asked for).
  std::optional<std::string> first_mistake;
  const auto mistake = [&](std::string text) {
    if (!first_mistake) first_mistake = std::move(text);
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.after_dashes.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    // -h, as most tools take it, for the commands that have --help.
    if (a == "-h" && listed(known.booleans, "help")) {
      out.flags.push_back({"help", "", "-h"});
      continue;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      if (a.size() > 1 && a[0] == '-' && a != "-") {
        mistake("unknown option '" + a + "'");
      } else {
        out.positional.push_back(a);
      }
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
      const auto on = value ? config::parse_bool(*value) : std::optional<bool>(true);
      if (!on) {
        mistake("option --" + name + ": expected true/false/1/0/yes/no, got '" + *value + "'");
        continue;
      }
      // The last of "--starttls --starttls=false" wins; "false" stays in its place, as a
      // setting that overrides the configuration (serve's --lmtp=false).
      std::erase_if(out.flags, [&](const flag_value& f) { return f.name == name; });
      if (*on) {
        out.flags.push_back({name, "", "--" + name});
      } else if (name != "help" && name != "version") {
        out.flags.push_back({name, "false", "--" + name});
      }
    } else if (!listed(known.valued, name)) {
      mistake(unknown_flag(name, known));
    } else if (value) {
      out.flags.push_back({name, *value, "--" + name});
    } else if (i + 1 < args.size()) {
      // "--listen --tls-listen X": the value was left out, not "--tls-listen" meant as one.
      const std::string& next = args[i + 1];
      std::string next_name = next.starts_with("--") ? next.substr(2) : "";
      next_name.resize(std::min(next_name.size(), next_name.find('=')));
      if (next == "--" || (!next_name.empty() && (listed(known.booleans, next_name) ||
                                                  listed(known.valued, next_name)))) {
        mistake("option --" + name + " needs a value (" +
                (next == "--" ? "-- after it ends the options" : next + " after it is an option") +
                "; a value that starts with -- is given as --" + name + "=VALUE)");
        continue;
      }
      out.flags.push_back({name, args[++i], "--" + name});
    } else {
      mistake("option --" + name + " needs a value");
    }
  }
  return first_mistake;
}

configuration_file configuration_file_of(const parsed_args& args) {
  for (auto f = args.flags.rbegin(); f != args.flags.rend(); ++f)
    if (f->name == "config") return {f->value, false};
  const char* env = std::getenv("SMTPFAULT_CONFIG");
  if (env && *env) return {env, true};
  return {};
}

proto::expected<double, std::string> parse_seconds(const std::string& text) {
  constexpr double year = 365.0 * 24 * 3600;
  double secs = 0;
  // Decimal only: from_chars reads neither "0x10" nor "inf" as strtod would.
  const auto [ptr, ec] =
      std::from_chars(text.data(), text.data() + text.size(), secs, std::chars_format::general);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || !(secs >= 0.001) ||
      !(secs <= year)) {
    return proto::unexpected{"expected seconds, from 0.001 to a year (31536000), got '" + text +
                             "'"};
  }
  return secs;
}

std::optional<std::uint64_t> parse_whole_number(const std::string& text) {
  std::uint64_t n = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return n;
}

namespace {

// Whether the command line's own flags replace this configured one.
bool overridden(const configurable_flags& which, const parsed_args& args,
                const config::configured_flag& c) {
  if (listed(which.added, c.name)) return false;
  const bool chooses = listed(which.alternatives, c.name);
  return std::any_of(args.flags.begin(), args.flags.end(), [&](const flag_value& f) {
    // --tls replaces the file's starttls; --tls=false leaves it.
    if (chooses && f.name != c.name && listed(which.alternatives, f.name))
      return f.value != "false";
    if (f.name != c.name) return false;
    return !listed(which.keyed, c.name) ||
           config::key_of_pair(f.value) == config::key_of_pair(c.value);
  });
}

}  // namespace

config::command_keys configuration_keys(const configurable_flags& which, const flag_set& known) {
  config::command_keys keys{which.command,
                            {},
                            {},
                            which.repeatable,
                            which.numbers,
                            which.integers,
                            which.left_out,
                            which.keyed,
                            which.alternatives};
  auto configurable = [&](const std::string& name) {
    return !listed({"help", "version", "config", "set"}, name) && !listed(which.left_out, name);
  };
  for (const auto& name : known.booleans)
    if (configurable(name)) keys.booleans.push_back(name);
  for (const auto& name : known.valued)
    if (configurable(name)) keys.valued.push_back(name);
  return keys;
}

std::optional<std::string> add_configured_flags(const configurable_flags& which,
                                                const flag_set& known, char** envp,
                                                parsed_args& args,
                                                config::settings* file_settings) {
  // A boolean switched off on the command line has done its work once it has overridden the
  // configuration: the command sees only the flags that are on.
  auto drop_switched_off = [&] {
    std::erase_if(args.flags, [&](const flag_value& f) {
      return f.value == "false" && listed(known.booleans, f.name);
    });
  };
  // --help and --version answer even when the configuration has a mistake.
  for (const auto& f : args.flags) {
    if (f.name == "help" || f.name == "version") {
      drop_switched_off();
      return std::nullopt;
    }
  }
  const auto [file, file_from_environment] = configuration_file_of(args);
  auto configured = config::read_command_flags(configuration_keys(which, known), file, envp);
  std::optional<std::string> error;
  if (!configured) error = configured.error().message;
  // The rest of the file holds no mistake either (a [sned] table, a key above all tables): a
  // command reading the file says so, as the server would.
  if (!error && !file.empty()) {
    config::settings scratch;
    if (auto whole = config::apply_file(scratch, file); !whole) error = whole.error().message;
    if (file_settings) *file_settings = std::move(scratch);
  }
  if (!error && !file.empty()) error = check_commands_configuration(file, nullptr);
  if (error) {
    // A file nobody named on this command line: say where its name came from.
    if (file_from_environment && error->starts_with(file + ": cannot open file")) {
      return "SMTPFAULT_CONFIG=" + *error;
    }
    return error;
  }
  std::vector<flag_value> merged;
  for (auto& c : *configured)
    if (!overridden(which, args, c)) merged.push_back({c.name, c.value, c.origin});
  merged.insert(merged.end(), args.flags.begin(), args.flags.end());
  args.flags = std::move(merged);
  drop_switched_off();
  return std::nullopt;
}

std::optional<std::string> check_server_variables(char** envp, config::settings& onto) {
  if (auto applied = config::apply_environment(onto, envp); !applied) {
    return applied.error().message;
  }
  return std::nullopt;
}

}  // namespace smtpfault::app
