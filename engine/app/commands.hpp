// The subcommands of the smtpfault binary. Each returns the process exit status:
// 0 success, 1 failure of what was asked, 2 usage or configuration error.
#pragma once

#include <string>
#include <vector>

namespace smtpfault::app {

int serve_command(const std::vector<std::string>& args, char** envp);
// SIGINT, SIGTERM and SIGHUP, which stop serve, held back on the calling thread (hold = true:
// main() before serve's handler exists; the mask survives the huge-page restart) or let
// through again (serve, once its handler is in place: one that came meanwhile is handled then).
void hold_stop_signals(bool hold);
int send_command(const std::vector<std::string>& args, char** envp);
int check_command(const std::vector<std::string>& args, char** envp);
int list_command(const std::vector<std::string>& args);
int test_command(const std::vector<std::string>& args, char** envp);
int run_command(const std::vector<std::string>& args, char** envp);
int healthcheck_command(const std::vector<std::string>& args, char** envp);
int ca_command(const std::vector<std::string>& args);

}  // namespace smtpfault::app
