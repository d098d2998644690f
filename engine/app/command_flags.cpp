#include "app/command_flags.hpp"

namespace smtpfault::app {

// The configuration's side, in the order of configurable_flags: repeatable, numbers, integers,
// left out (the server's keys), keyed, alternatives.

const command_flags& send_flags() {
  static const command_flags f{{{"starttls", "tls", "verify", "help", "version"},
                                {"server", "ca", "auth", "helo", "from", "to", "data", "notify",
                                 "ret", "envid", "timeout", "config", "log-format"}},
                               {"send", {"to"}, {"timeout"}, {}, {}, {}, {"tls", "starttls"}},
                               &check_send_values};
  return f;
}

const command_flags& run_flags() {
  static const command_flags f{{{"help", "version", "quiet"},
                                {"target", "tls-target", "timeout", "seed", "param", "junit",
                                 "json", "config", "log-format"}},
                               {"run", {"param"}, {"timeout", "seed"}, {"seed"}, {}, {"param"}},
                               &check_run_values};
  return f;
}

const command_flags& test_flags() {
  // --scenario, --seed and --time-scale are the server's keys scenario, seed and time_scale.
  static const command_flags f{{{"help", "version"},
                                {"scenario", "scenarios", "exclude", "waive", "junit", "json",
                                 "timeout", "time-scale", "jobs", "seed", "config", "set"}},
                               {"test",
                                {"scenarios", "exclude", "waive"},
                                {"timeout", "jobs"},
                                {"jobs"},
                                {"scenario", "seed", "time-scale"},
                                {},
                                {"scenario", "scenarios"},
                                {"exclude", "waive"}},
                               &check_test_values};
  return f;
}

const command_flags& healthcheck_flags() {
  // --api and --api-token are the server's keys api and api_token.
  static const command_flags f{{{"help", "version"}, {"config", "api", "api-token", "timeout"}},
                               {"healthcheck", {}, {"timeout"}, {}, {"api", "api-token"}},
                               &check_healthcheck_values};
  return f;
}

const command_flags& check_flags() {
  static const command_flags f{{{"help", "version", "client"}, {"config"}},
                               {"check", {}, {}, {}, {}},
                               [](const std::vector<flag_value>&) -> std::optional<std::string> {
                                 return std::nullopt;  // one switch: nothing to check
                               }};
  return f;
}

std::optional<std::string> check_commands_configuration(const std::string& file, char** envp) {
  for (const auto* c :
       {&send_flags(), &run_flags(), &test_flags(), &healthcheck_flags(), &check_flags()}) {
    auto read = config::read_command_flags(configuration_keys(c->config, c->flags), file, envp);
    if (!read) return read.error().message;
    std::vector<flag_value> flags;
    for (auto& f : *read)
      flags.push_back({f.name, f.value, f.origin});
    if (auto err = c->check_values(flags)) return err;
  }
  return std::nullopt;
}

}  // namespace smtpfault::app
