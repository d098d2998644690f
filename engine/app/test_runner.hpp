// `smtpfault test`: one fresh server per scenario, the user's command run against it, then the
// verdict from the scenario's expectations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "net/tls_context.hpp"
#include "script/expectations.hpp"

namespace smtpfault::app {

struct test_options {
  std::vector<std::string> command;  // CMD [ARGS]
  double timeout = 60;               // seconds per run of the command
  std::uint64_t seed = 0;
  double time_scale = 1.0;
  // Built-in checks set aside in every scenario (--waive quit): reported, deciding nothing.
  std::vector<std::string> waived;
  // serve's configuration for every scenario's server; where it listens is the runner's.
  config::settings server;
  // The test CA written out for the command (SMTP_CA_FILE); empty when the servers present
  // a certificate of the user's own (tls.cert).
  std::string ca_file;
};

// skip: only `run` gives it, for a probe with nothing to probe (skip() in the script).
enum class verdict { pass, fail, error, skip };

// The reason of a pass with nothing more to say: all checks held, or no check and exit 0.
inline constexpr std::string_view all_held = "all expectations held";
inline constexpr std::string_view command_succeeded = "command succeeded";

// scenario_result::kind of a scenario the mailer's own TLS stopped at the handshake (no common
// version, the server's certificate refused): the reason begins with how.
inline constexpr std::string_view tls_stopped_kind = "tls handshake";

struct scenario_result {
  std::string name;  // a built-in's name, or a file's without ".lua" (its path if ambiguous)
  std::string file;  // the scenario's file as given; "" for a built-in
  verdict outcome = verdict::error;
  std::string reason;  // one line for the table
  // JUnit's failure type where the reason does not begin with it ("check name: ..."), as a
  // client run's reasons begin with the script's place.
  std::string kind;
  // With tls_stopped_kind: the cause the reason gives, which the table says once for all.
  std::string tls_stop_cause;
  std::vector<script::check_result> checks;
  std::vector<int> exit_codes;
  std::vector<int> exit_signals;  // per run: the signal that killed the command, else 0
  std::uint64_t delivered = 0;    // messages the server accepted in the scenario's runs
  double seconds = 0;
  std::string command_output;              // what the command printed (stdout and stderr)
  std::string transcript;                  // every session, readable
  bool loaded = false;                     // the scenario loaded (its unread_params mean something)
  std::vector<std::string> unread_params;  // scenario_params its source never names
  std::vector<std::string> named_params;   // keys its source could read, for a "did you mean"
};

scenario_result run_scenario(const std::string& name_or_path, const test_options& opts,
                             net::tls_contexts& tls);

const char* verdict_name(verdict v);

// The check whose words lead a failing result's reason ("name: detail"), or nullptr where other
// words lead (a timeout, a signal, a TLS stop, a client that gave up waiting).
const script::check_result* leading_check(const scenario_result& r);

}  // namespace smtpfault::app
