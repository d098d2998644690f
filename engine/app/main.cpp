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
    "  serve    run the mock SMTP server until SIGTERM/SIGINT\n"
    "  send     send one message to an SMTP server\n"
    "  test     run a command against each scenario and check what it did\n"
    "  run      run a client scenario (a probe) against any SMTP server\n"
    "  check    load scenarios in the sandbox and report errors\n"
    "  list     list the built-in scenarios\n"
    "  healthcheck  exit 0 if a running server's API reports ready\n"
    "\n"
    "Run 'smtpfault <command> --help' for the options of a command.\n"
    "  --version  print the version\n";

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
  if (cmd == "serve") {
    smtpfault::app::restart_with_huge_page_heap(argv);
    return smtpfault::app::serve_command(rest, environ);
  }
  if (cmd == "send") return smtpfault::app::send_command(rest, environ);
  if (cmd == "test") return smtpfault::app::test_command(rest, environ);
  if (cmd == "run") return smtpfault::app::run_command(rest, environ);
  if (cmd == "check") return smtpfault::app::check_command(rest);
  if (cmd == "list") return smtpfault::app::list_command(rest);
  if (cmd == "healthcheck") return smtpfault::app::healthcheck_command(rest, environ);
  const auto hint = smtpfault::proto::did_you_mean(
      cmd, {"serve", "send", "test", "run", "check", "list", "healthcheck", "help"});
  std::fprintf(stderr, "smtpfault: unknown command '%s'%s\n\n%s", cmd.c_str(), hint.c_str(),
               usage_text);
  return 2;
}
