// `smtpfault check` and `smtpfault list`.
#include <cstdio>
#include <filesystem>

#include "app/cli_args.hpp"
#include "app/command_flags.hpp"
#include "app/commands.hpp"
#include "app/server_setup.hpp"
#include "app/version.hpp"
#include "proto/expected.hpp"
#include "script/catalogue.hpp"
#include "script/client_script.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

namespace {

bool is_builtin_client_scenario(const std::string& name) {
  for (const auto& b : script::builtin_client_scenarios())
    if (b.name == name) return true;
  return false;
}

void print_check_help() {
  std::printf(
      "usage: smtpfault check [--client] [--config FILE] SCENARIO...\n\n"
      "Loads each scenario (a .lua path, a folder's .lua files but not its subfolders', or a\n"
      "built-in name) in the sandbox, with the same limits as serve (lua.memory and\n"
      "lua.instructions from --config or SMTPFAULT_CONFIG and the SMTPFAULT_* variables),\n"
      "and reports errors as file:line: message. Exit 0 when all load, 1 when any fails.\n\n"
      "  --client   the files are client scripts (smtpfault run); they run as they load, so\n"
      "             only their syntax is checked, and calls of names that are neither the\n"
      "             script's nor the library's (a misspelt c:expct() for c:expect()).\n"
      "             Built-in client scenarios need no flag, and a file that calls\n"
      "             connect() is checked as a client script.\n"
      "             [check] client = true in the file, or SMTPFAULT_CHECK_CLIENT=true\n");
}

// A folder stands for its .lua files, in name order, as `test --scenarios DIR` takes it.
proto::expected<std::vector<std::string>, std::string> scenario_files(
    const std::vector<std::string>& given) {
  std::vector<std::string> names;
  for (const auto& name : given) {
    std::error_code ec;
    if (!std::filesystem::is_directory(name, ec)) {
      names.push_back(name);
      continue;
    }
    auto found = script::lua_files_in(name);
    if (!found) return proto::unexpected{name + ": " + found.error()};
    names.insert(names.end(), found->begin(), found->end());
  }
  return names;
}

// Loads each one, saying ok or why not; returns how many did not load.
int load_each(const std::vector<std::string>& names, bool client,
              const script::scenario_options& limits) {
  // The loaded scenario's name, or why it did not load.
  auto outcome = [](const auto& sc) -> std::pair<std::string, std::string> {
    if (!sc) return {"", sc.error()};
    return {script::shown_name((*sc)->name()), ""};
  };
  // A client script runs as it loads: its syntax, its modules, and calls of names it cannot
  // have meant. `compiled` says whether it loaded as a client script at all.
  bool compiled = false;
  auto client_outcome = [&](const std::string& name) -> std::pair<std::string, std::string> {
    auto sc = script::client_script::load_named(name, {});
    compiled = sc.has_value();
    if (sc) {
      if (auto misspelt = (*sc)->check_without_running()) return {"", *misspelt};
    }
    return outcome(sc);
  };
  int failures = 0;
  for (const auto& name : names) {
    auto [loaded, error] = client || is_builtin_client_scenario(name)
                               ? client_outcome(name)
                               : outcome(script::scenario::load_named(name, limits));
    // A client script among server scenarios (`check scenarios/client`, or a folder of both):
    // one that stopped at connect(), which every client script calls and no scenario has, is
    // checked as what it is, and said so (the connect() may be in a module it requires). If it
    // does not compile as one either, the scenario's own error stands (sleep() at a scenario's
    // top level is the scenario's mistake).
    if (!client && error.find(script::client_script_hint) != std::string::npos &&
        error.find("(global 'connect')") != std::string::npos) {
      auto [as_client, client_error] = client_outcome(name);
      if (compiled) {  // a client script: what is wrong with it as one, if anything
        loaded = as_client + " (a client script)";
        error = client_error;
      }
    }
    if (!error.empty()) {
      std::fprintf(stderr, "%s\n", error.c_str());
      ++failures;
    } else {
      std::printf("ok  %s\n", loaded.c_str());
    }
  }
  return failures;
}

}  // namespace

int check_command(const std::vector<std::string>& argv, char** envp) {
  parsed_args args;
  const auto& known = check_flags().flags;
  if (auto err = parse_args(argv, known, args)) {
    std::fprintf(stderr, "smtpfault check: %s (see smtpfault check --help)\n", err->c_str());
    return 2;
  }
  if (auto err = add_configured_flags(check_flags().config, known, envp, args)) {
    std::fprintf(stderr, "smtpfault check: %s\n", err->c_str());
    return 2;
  }
  bool client = false;  // true: every file is a client script
  for (const auto& f : args.flags) {
    if (f.name == "help") return print_check_help(), 0;
    if (f.name == "version") return std::printf("smtpfault %s\n", version), 0;
    if (f.name == "client") client = f.value != "false";
  }
  if (args.positional.empty()) {
    std::fprintf(stderr,
                 "smtpfault check: name at least one scenario (see smtpfault check --help)\n");
    return 2;
  }
  // serve's configuration, for the sandbox's limits: a scenario that loads here loads there.
  config::settings serve_settings;
  if (auto err = read_file_and_environment(serve_settings, configuration_file_of(args), envp)) {
    std::fprintf(stderr, "smtpfault check: %s\n", err->c_str());
    return 2;
  }
  auto names = scenario_files(args.positional);
  if (!names) {
    std::fprintf(stderr, "smtpfault check: %s\n", names.error().c_str());
    return 2;
  }
  return load_each(*names, client, scenario_options(serve_settings)) ? 1 : 0;
}

int list_command(const std::vector<std::string>& argv) {
  for (const auto& a : argv) {
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: smtpfault list\n\nLists the built-in scenarios and what each does, then the "
          "client\nscenarios (probes) for smtpfault run.\n");
      return 0;
    }
    if (a == "--version") return std::printf("smtpfault %s\n", version), 0;
    std::fprintf(stderr, "smtpfault list: unexpected argument '%s'\n", a.c_str());
    return 2;
  }
  for (const auto& b : script::builtin_scenarios()) {
    std::printf("%-26s %s\n", b.name.c_str(), b.description.c_str());
  }
  const auto& probes = script::builtin_client_scenarios();
  if (!probes.empty())
    std::printf(
        "\nclient scenarios (smtpfault run NAME --target HOST:PORT; 'probe-*' runs them all):\n");
  for (const auto& b : probes) {
    std::printf("%-26s %s\n", b.name.c_str(), b.description.c_str());
  }
  return 0;
}

}  // namespace smtpfault::app
