// `smtpfault healthcheck`: GET /readyz on the API and exit 0 on 200, for docker HEALTHCHECK
// (the runtime image has no curl). The address comes from --api, else the same TOML file and
// SMTPFAULT_* environment the server reads, so the image needs no extra configuration.
#include <cstdio>
#include <cstdlib>

#include "app/cli_args.hpp"
#include "app/command_flags.hpp"
#include "app/commands.hpp"
#include "app/server_setup.hpp"
#include "app/version.hpp"
#include "config/loader.hpp"
#include "control/health_probe.hpp"
#include "proto/duration.hpp"

namespace smtpfault::app {

namespace {

void print_healthcheck_help() {
  std::printf(
      "usage: smtpfault healthcheck [--api HOST:PORT] [--api-token TOKEN] [--timeout SEC]\n"
      "\n"
      "Asks a running 'smtpfault serve' whether it is ready (GET /readyz on its HTTP API).\n"
      "Exit status 0 when ready, 1 otherwise, also for a usage or configuration error (Docker\n"
      "reserves 2 for itself; the message says what went wrong).\n"
      "Without --api, the address is read as the server reads it: --config /\n"
      "SMTPFAULT_CONFIG, then SMTPFAULT_API (default 127.0.0.1:8025); a wildcard address\n"
      "(0.0.0.0, ::) means this host. --timeout (default 3 seconds) is also the key timeout\n"
      "of the file's [healthcheck] table and SMTPFAULT_HEALTHCHECK_TIMEOUT.\n");
}

std::optional<std::string> read_healthcheck_settings(config::settings& s, const parsed_args& args,
                                                     char** envp) {
  return read_file_and_environment(s, configuration_file_of(args), envp);
}

std::optional<std::string> apply_healthcheck_flag(const flag_value& f, config::settings& s,
                                                  double& timeout) {
  if (f.name == "api") {
    auto ep = config::parse_target(f.value);
    if (!ep) return "--api: " + ep.error();
    s.api = *ep;
  } else if (f.name == "api-token") {
    s.api_token = f.value;
  } else if (f.name == "timeout") {
    auto secs = parse_seconds(f.value);
    if (!secs) return f.origin + ": " + secs.error();
    timeout = *secs;
  }
  return std::nullopt;
}

std::optional<std::string> read_settings(config::settings& s, const parsed_args& args, char** envp,
                                         double& timeout) {
  // An explicit --api needs nothing from the server's configuration.
  bool explicit_api = false;
  for (const auto& f : args.flags)
    explicit_api = explicit_api || f.name == "api";
  if (!explicit_api) {
    if (auto err = read_healthcheck_settings(s, args, envp)) return err;
  }
  for (const auto& f : args.flags)
    if (auto err = apply_healthcheck_flag(f, s, timeout)) return err;
  return std::nullopt;
}

// Where to ask: the API's address, a wildcard one (the server listens everywhere) on loopback.
proto::expected<boost::asio::ip::tcp::endpoint, std::string> api_endpoint(
    const config::settings& s) {
  if (s.api.host.empty()) {
    return proto::unexpected{std::string("api is empty: the server has no HTTP API to ask")};
  }
  if (s.api.port == 0) {
    // To serve it means any free port, which only the server knows.
    return proto::unexpected{s.named("api") +
                             ": port 0 is any free port: healthcheck needs the port the API "
                             "listens on"};
  }
  auto resolved = to_endpoint(s.api, s.named("api"));
  if (!resolved) return proto::unexpected{resolved.error()};
  return reachable_here(*resolved);
}

}  // namespace

std::optional<std::string> check_healthcheck_values(const std::vector<flag_value>& flags) {
  config::settings scratch;
  double timeout = 0;
  for (const auto& f : flags)
    if (auto err = apply_healthcheck_flag(f, scratch, timeout)) return err;
  return std::nullopt;
}

int healthcheck_command(const std::vector<std::string>& argv, char** envp) {
  parsed_args args;
  const auto& known = healthcheck_flags().flags;
  if (auto err = parse_args(argv, known, args)) {
    std::fprintf(stderr, "smtpfault healthcheck: %s (see smtpfault healthcheck --help)\n",
                 err->c_str());
    return 1;
  }
  if (auto err = add_configured_flags(healthcheck_flags().config, known, envp, args)) {
    std::fprintf(stderr, "smtpfault healthcheck: %s\n", err->c_str());
    return 1;
  }
  for (const auto& f : args.flags) {
    if (f.name == "help") return print_healthcheck_help(), 0;
    if (f.name == "version") return std::printf("smtpfault %s\n", version), 0;
  }
  if (!args.positional.empty()) {
    std::fprintf(stderr, "smtpfault healthcheck: unexpected argument '%s'\n",
                 args.positional[0].c_str());
    return 1;
  }
  config::settings s;
  double timeout = 3;
  if (auto err = read_settings(s, args, envp, timeout)) {
    std::fprintf(stderr, "smtpfault healthcheck: %s\n", err->c_str());
    return 1;
  }
  auto ep = api_endpoint(s);
  if (!ep) {
    std::fprintf(stderr, "smtpfault healthcheck: %s\n", ep.error().c_str());
    return 1;
  }
  auto status =
      control::probe(*ep, "/readyz", s.api_token, proto::millis_from_seconds(timeout, true));
  if (!status) {
    std::fprintf(stderr, "smtpfault healthcheck: %s:%u: %s\n", ep->address().to_string().c_str(),
                 static_cast<unsigned>(s.api.port), status.error().c_str());
    return 1;
  }
  if (*status != 200) {
    std::fprintf(stderr, "smtpfault healthcheck: not ready (HTTP %u)\n", *status);
    return 1;
  }
  std::printf("ready\n");
  return 0;
}

}  // namespace smtpfault::app
