// `smtpfault check` and `smtpfault list`.
#include <cstdio>

#include "app/cli_args.hpp"
#include "app/commands.hpp"
#include "app/version.hpp"
#include "script/catalogue.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

int check_command(const std::vector<std::string>& argv) {
  parsed_args args;
  if (auto err = parse_args(argv, {"help", "version"}, args)) {
    std::fprintf(stderr, "smtpfault check: %s\n", err->c_str());
    return 2;
  }
  for (const auto& f : args.flags) {
    if (f.name == "help") {
      std::printf(
          "usage: smtpfault check SCENARIO...\n\n"
          "Loads each scenario (a .lua path or a built-in name) in the sandbox, with the same\n"
          "limits as serve, and reports errors as file:line: message. Exit 0 when all load,\n"
          "1 when any fails.\n");
      return 0;
    }
    if (f.name == "version") return std::printf("smtpfault %s\n", version), 0;
    std::fprintf(stderr, "smtpfault check: unknown option --%s\n", f.name.c_str());
    return 2;
  }
  if (args.positional.empty()) {
    std::fprintf(stderr, "smtpfault check: name at least one scenario (see --help)\n");
    return 2;
  }
  int failures = 0;
  for (const auto& name : args.positional) {
    auto sc = script::scenario::load_named(name, {});
    if (!sc) {
      std::fprintf(stderr, "%s\n", sc.error().c_str());
      ++failures;
    } else {
      std::printf("ok  %s\n", (*sc)->name().c_str());
    }
  }
  return failures ? 1 : 0;
}

int list_command(const std::vector<std::string>& argv) {
  for (const auto& a : argv) {
    if (a == "--help") {
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
  if (!probes.empty()) std::printf("\nclient scenarios (smtpfault run NAME --target HOST:PORT):\n");
  for (const auto& b : probes) {
    std::printf("%-26s %s\n", b.name.c_str(), b.description.c_str());
  }
  return 0;
}

}  // namespace smtpfault::app
