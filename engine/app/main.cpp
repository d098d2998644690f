// smtpfault: an SMTP protocol testing and fault-injection harness.
#include <cstdio>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "app/huge_pages.hpp"
#include "app/version.hpp"
#include "proto/near_miss.hpp"

extern char** environ;

namespace {

constexpr const char* usage_text =
    "usage: smtpfault <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve        run the mock SMTP server until SIGTERM/SIGINT\n"
    "  send         send one message to an SMTP server\n"
    "  test         run a command against each scenario and check what it did\n"
    "  run          run client scenarios (probes) against any SMTP server\n"
    "  check        load scenarios in the sandbox and report errors\n"
    "  list         list the built-in scenarios\n"
    "  healthcheck  exit 0 if a running server's API reports ready\n"
    "  ca           print the bundled test CA's certificate, for a client to trust\n"
    "\n"
    "options:\n"
    "  --help       this text; 'smtpfault <command> --help' for a command's options\n"
    "  --version    print the version\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(usage_text, stderr);
    return 2;
  }
  const std::string cmd = args.front();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(usage_text, stdout);
    return 0;
  }
  if (cmd == "--version") {
    std::printf("smtpfault %s\n", smtpfault::app::version);
    return 0;
  }
  struct command {
    const char* name;
    int (*run)(const std::vector<std::string>& rest, char** argv);
  };
  static constexpr command commands[] = {
      {"serve",
       [](const std::vector<std::string>& rest, char** argv) {
         // A stop that comes before serve's handler is then a clean stop, not a death.
         smtpfault::app::hold_stop_signals(true);
         smtpfault::app::restart_with_huge_page_heap(argv);
         return smtpfault::app::serve_command(rest, environ);
       }},
      {"send",
       [](const auto& rest, char**) { return smtpfault::app::send_command(rest, environ); }},
      {"test",
       [](const auto& rest, char**) { return smtpfault::app::test_command(rest, environ); }},
      {"run", [](const auto& rest, char**) { return smtpfault::app::run_command(rest, environ); }},
      {"check",
       [](const auto& rest, char**) { return smtpfault::app::check_command(rest, environ); }},
      {"list", [](const auto& rest, char**) { return smtpfault::app::list_command(rest); }},
      {"healthcheck",
       [](const auto& rest, char**) { return smtpfault::app::healthcheck_command(rest, environ); }},
      {"ca", [](const auto& rest, char**) { return smtpfault::app::ca_command(rest); }},
  };
  std::vector<std::string> names{"help"};
  for (const auto& c : commands) {
    if (cmd == c.name) return c.run(rest, argv);
    names.emplace_back(c.name);
  }
  const auto hint = smtpfault::proto::did_you_mean(cmd, names);
  std::fprintf(stderr, "smtpfault: unknown command '%s'%s\n\n%s", cmd.c_str(), hint.c_str(),
               usage_text);
  return 2;
}
