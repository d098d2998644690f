// Reading `smtpfault test`'s flags, the configuration's and the command after --.
#include "app/test_arguments.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "app/command_flags.hpp"
#include "app/test_report.hpp"
#include "proto/near_miss.hpp"
#include "script/catalogue.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

void print_test_help() {
  std::printf(
      "usage: smtpfault test [options] -- CMD [ARGS]\n"
      "\n"
      "Runs CMD once per scenario against a fresh mock server on ephemeral loopback ports and\n"
      "checks the scenario's expectations. CMD finds the server in its environment:\n"
      "SMTP_HOST, SMTP_PORT, SMTP_TLS_PORT (implicit TLS), SMTP_SERVER (HOST:PORT),\n"
      "SMTPFAULT_API (HOST:PORT of the HTTP API), SMTPFAULT_SCENARIO, SMTP_CA_FILE (the\n"
      "test CA that signs the server's certificate, to trust), and SMTP_USER and\n"
      "SMTP_PASSWORD (credentials the servers take: any do, unless [auth.users] is set,\n"
      "whose first user they then are). Each run of CMD reads the same standard input from\n"
      "its start (< mail.eml, or a pipe, read first; a terminal gives none). Exit 0 when\n"
      "every scenario passed, 1 when any failed, 2 for usage or scenario errors.\n"
      "\n"
      "  --scenario S       a built-in name, a glob of them ('auth-*') or a .lua file;\n"
      "                     repeatable (default: every built-in scenario, see smtpfault list)\n"
      "  --scenarios DIR    every .lua file in DIR\n"
      "  --exclude S        leave out scenarios by name, file name or glob (auth-*); repeatable,\n"
      "                     e.g. what does not apply to the mailer's policy\n"
      "  --waive CHECK      set aside one check of how the mailer speaks (quit, pipelining,\n"
      "                     line_endings, line_length, dot_stuffing) in every scenario, e.g. a\n"
      "                     habit of its library; repeatable. Still run and reported, it\n"
      "                     decides no verdict\n"
      "  --junit FILE       write a JUnit XML report (its folder is made when missing)\n"
      "  --json FILE        write a JSON report (the same)\n"
      "  --timeout SEC      kill CMD (its whole process group) after SEC seconds (default 60)\n"
      "  --seed N           seed for every scenario (default: random, printed)\n"
      "  --time-scale F     multiply scenario delays and windows by F (e.g. 0.01)\n"
      "  --jobs N           run N scenarios at once (default 1)\n"
      "  --config FILE      serve's TOML configuration for the scenario servers (AUTH users,\n"
      "                     LMTP, limits, certificate...; env SMTPFAULT_CONFIG); SMTPFAULT_*\n"
      "                     variables apply as for serve. Where they listen is the runner's.\n"
      "  --set KEY=VALUE    one configuration key on top, e.g. --set lmtp=true\n"
      "  --help, --version\n"
      "\n"
      "The runner's own options are keys of the file's [test] table too (junit = \"r.xml\",\n"
      "jobs = 2, scenarios = [\"dir\"]) and SMTPFAULT_TEST_* variables (SMTPFAULT_TEST_JUNIT);\n"
      "--scenario, --seed and --time-scale are the server's keys scenario, seed and time_scale.\n"
      "The command line wins over the environment, which wins over the file.\n");
}

namespace {

bool parse_number(const std::string& text, double& out) {
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && end && *end == '\0' && out > 0;
}

std::optional<std::string> add_directory(const flag_value& flag, std::vector<std::string>& out) {
  auto found = script::lua_files_in(flag.value);
  if (!found) return flag.with_value() + ": " + found.error();
  out.insert(out.end(), found->begin(), found->end());
  return std::nullopt;
}

// Where the servers listen is the runner's choice, so their address variables are not read: a
// value set for something else (SMTPFAULT_API=http://...), or the one this runner gives its
// commands, seen by a run nested in one, is no mistake here.
std::vector<char*> without_address_variables(char** envp) {
  std::vector<char*> kept;
  for (char** e = envp; e && *e; ++e) {
    const std::string_view var(*e);
    if (!var.starts_with("SMTPFAULT_LISTEN=") && !var.starts_with("SMTPFAULT_TLS_LISTEN=") &&
        !var.starts_with("SMTPFAULT_API=")) {
      kept.push_back(*e);
    }
  }
  kept.push_back(nullptr);
  return kept;
}

// One flag into p; folders and report paths are looked at only when touch_files (serve checks
// the configuration without them: a path may be relative to where the runner runs later).
std::optional<std::string> apply_test_flag(const flag_value& f, parsed_test& p, bool touch_files) {
  if ((f.name == "scenario" || f.name == "scenarios") && f.origin.starts_with("--")) {
    p.scenarios_on_command_line = true;
  }
  if (f.name == "scenario" && f.value.find_first_of("*?[") != std::string::npos &&
      f.value.find('/') == std::string::npos && !f.value.ends_with(".lua")) {
    // A glob of built-in names ('auth-*'), as --exclude takes; one that matches none is a slip.
    std::vector<std::string> names;
    for (const auto& b : script::builtin_scenarios()) {
      if (fnmatch(f.value.c_str(), b.name.c_str(), 0) == 0) names.push_back(b.name);
    }
    if (names.empty()) {
      return f.origin + " " + f.value + ": matches no built-in scenario (see smtpfault list)";
    }
    p.scenarios.insert(p.scenarios.end(), names.begin(), names.end());
  } else if (f.name == "scenario") {
    // A name that is no scenario, or a file that cannot be read, is a slip in the command, said
    // before anything runs; a scenario that does not load is a result, in the reports.
    if (touch_files) {
      if (auto found = script::find_scenario_source(f.value); !found) {
        return f.origin + ": " + found.error();
      }
    }
    p.scenarios.push_back(f.value);
  } else if (f.name == "scenarios") {
    if (f.value.empty()) return f.origin + ": expected a directory";
    if (touch_files) return add_directory(f, p.scenarios);
  } else if (f.name == "exclude") {
    if (f.value.empty()) return f.origin + ": expected a scenario name or a glob";
    p.excluded.emplace_back(f.value, f.origin);
  } else if (f.name == "waive") {
    const auto& names = script::waivable_checks();
    if (std::find(names.begin(), names.end(), f.value) == names.end()) {
      std::string listed;
      for (const auto& n : names)
        listed += (listed.empty() ? "" : ", ") + n;
      return f.origin + ": '" + f.value + "' is no check that can be waived" +
             proto::did_you_mean(f.value, names) + " (one of: " + listed +
             "; a check of what the mailer decides, such as retried_after_4xx, is the point of "
             "its scenarios: --exclude them instead)";
    }
    if (std::find(p.opts.waived.begin(), p.opts.waived.end(), f.value) == p.opts.waived.end())
      p.opts.waived.push_back(f.value);
  } else if (f.name == "junit" || f.name == "json") {
    // Found out now, not after every scenario has run.
    auto err = f.value.empty() || !touch_files ? std::nullopt : unwritable_report(f.value);
    if (err) return f.with_value() + ": " + *err;
    (f.name == "junit" ? p.junit : p.json) = f.value;
  } else if (f.name == "timeout") {
    auto secs = parse_seconds(f.value);
    if (!secs) return f.origin + ": " + secs.error();
    p.opts.timeout = *secs;
  } else if (f.name == "time-scale") {
    if (!parse_number(f.value, p.opts.time_scale) || p.opts.time_scale > 1e6) {
      return "--time-scale: expected a number above 0, at most 1000000, got '" + f.value + "'";
    }
    p.time_scale_given = true;
  } else if (f.name == "jobs") {
    auto jobs = parse_whole_number(f.value);
    if (!jobs || *jobs < 1 || *jobs > 1024) {
      return f.origin + ": expected a whole number from 1 to 1024, got '" + f.value + "'";
    }
    p.jobs = static_cast<unsigned>(*jobs);
  } else if (f.name == "seed") {
    auto seed = parse_whole_number(f.value);
    if (!seed) return "--seed: expected a whole number from 0 to 2^64-1, got '" + f.value + "'";
    p.opts.seed = *seed;
    p.seed_given = true;
  } else if (f.name == "set") {
    auto item = parse_set(f.value);
    if (!item) return "--set: expected KEY=VALUE, got '" + f.value + "'";
    p.sets.push_back(std::move(*item));
  }
  return std::nullopt;
}

}  // namespace

// The seed and time scale there count when the flags do not give them.
std::optional<std::string> read_test_settings(parsed_test& p, char** envp) {
  auto& s = p.opts.server;
  auto env = without_address_variables(envp);
  if (auto err = read_file_and_environment(s, p.config, env.data())) return err;
  if (auto err = apply_settings(s, p.sets)) return err;
  if (!p.seed_given && s.seed) {
    p.opts.seed = *s.seed;
    p.seed_given = true;
  }
  if (!p.time_scale_given) p.opts.time_scale = s.time_scale;
  // serve's scenario key is run too, unless the command line chose the scenarios; a name that is
  // none is said as for --scenario, with where it was set.
  if (!p.scenarios_on_command_line && !s.scenario.empty()) {
    if (auto found = script::find_scenario_source(s.scenario); !found) {
      return s.named("scenario") + ": " + found.error();
    }
    p.scenarios.push_back(s.scenario);
  }
  return std::nullopt;
}

std::string parse_test_arguments(const std::vector<std::string>& argv, char** envp,
                                 parsed_test& p) {
  parsed_args args;
  const auto& known = test_flags().flags;
  const auto names_a_report = [](const auto& f) { return f.name == "junit" || f.name == "json"; };
  auto err = parse_args(argv, known, args);
  if (!err) err = add_configured_flags(test_flags().config, known, envp, args);
  if (err) {
    // The refusal still replaces the reports of an earlier run: the command line's report
    // flags were read, also those after the mistake.
    for (const auto& f : args.flags)
      if (names_a_report(f)) (void)apply_test_flag(f, p, true);
    if (one_file_for_both_reports(p.junit, p.json)) p.json.clear();
    return *err;
  }
  for (const auto& f : args.flags)
    if (f.name == "help" || f.name == "version") return f.name;
  p.config = configuration_file_of(args);
  // The reports first: a mistake in any other flag is then written to them too.
  for (const auto& f : args.flags)
    if (names_a_report(f))
      if (auto err = apply_test_flag(f, p, true)) return *err;
  if (auto err = one_file_for_both_reports(p.junit, p.json)) {
    p.junit.clear();
    p.json.clear();
    return *err;
  }
  for (const auto& f : args.flags)
    if (!names_a_report(f))
      if (auto err = apply_test_flag(f, p, true)) return *err;
  if (!args.positional.empty()) {
    return "unexpected argument '" + args.positional[0] + "' (put the command after --)";
  }
  if (args.after_dashes.empty()) return "no command to test: give it after --";
  p.opts.command = args.after_dashes;
  return "";
}

std::optional<std::string> check_test_values(const std::vector<flag_value>& flags) {
  parsed_test scratch;
  for (const auto& f : flags)
    if (auto err = apply_test_flag(f, scratch, false)) return err;
  return std::nullopt;
}

}  // namespace smtpfault::app
