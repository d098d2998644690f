#include "app/test_runner.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "app/child_process.hpp"
#include "app/server_setup.hpp"
#include "app/test_timeout_reason.hpp"
#include "app/test_verdict.hpp"
#include "capture/message_store.hpp"
#include "capture/session_analysis.hpp"
#include "control/api_server.hpp"
#include "net/server.hpp"
#include "net/transcript_log.hpp"
#include "net/transport.hpp"
#include "proto/bounded_text.hpp"
#include "proto/duration.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

namespace {

using steady = std::chrono::steady_clock;

// A session's transcript entries the checks see at most. The mock's default (1,000, for
// sessions that never end) would hide the middle of a pooled sender's session from them, and a
// refusal there would never have happened; a mailer run ends, so it can have far more.
constexpr std::size_t checked_entries = 200000;
// Of those, the first and the last shown in the report: a reader wants how it began and ended.
constexpr std::size_t shown_entries = 500;

std::string render_transcript(
    const std::vector<std::shared_ptr<const capture::session_record>>& s) {
  std::string out;
  for (const auto& rec : s) {
    // "000002:20": the session and its line, as a failed check names them ("session 000002,
    // transcript line 20"), so that the line can be found in the sessions run together.
    const auto& entries = rec->entries;
    const std::size_t n = entries.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i == shown_entries && n > 2 * shown_entries) {
        out += "... " + std::to_string(n - 2 * shown_entries) + " lines of session " +
               rec->facts.session_id + " not shown here (the checks saw them)";
        // Past checked_entries the middle was dropped as it came: the numbers after it count
        // the lines kept, as the checks' do.
        if (rec->dropped > 0) {
          out += ", and " + std::to_string(rec->dropped) +
                 " more dropped among them that not even the checks saw (line numbers after "
                 "that count only the lines kept)";
        }
        out += "\n";
        i = n - shown_entries;
      }
      const auto& e = entries[i];
      const char* tag = e.dir == session::direction::client   ? "C"
                        : e.dir == session::direction::server ? "S"
                                                              : "*";
      out += session::format_timestamp(e.at) + " " + rec->facts.session_id + ":" +
             std::to_string(i + 1) + " " + tag + ": " + session::escape_wire(e.text) + "\n";
    }
  }
  return out;
}

// A server of its own for one scenario: ephemeral loopback ports, one I/O thread, and the HTTP
// API (SMTPFAULT_API) so the command can read messages and steer faults as in docker-compose.
struct scenario_server {
  // store_dir: where its messages are written as well ("" for memory alone).
  explicit scenario_server(std::string store_dir) : store(std::move(store_dir), 100000, 100000) {}

  capture::message_store store;
  net::transcript_log log{net::log_format::none};
  std::unique_ptr<net::server> srv;
  std::unique_ptr<control::api_server> api;
  std::thread thread;

  std::string start(std::shared_ptr<script::scenario> sc, net::tls_contexts& tls,
                    config::settings s) {
    s.listen = {{"127.0.0.1", 0}};
    s.tls_listen = {{"127.0.0.1", 0}};
    s.threads = 1;
    std::string error;
    auto cfg = make_server_config(s, error);
    if (!error.empty()) return error;
    cfg.max_transcript_entries = checked_entries;
    srv = std::make_unique<net::server>(std::move(cfg), tls, store, log);
    const auto opts = sc->options();
    srv->set_scenario(std::move(sc));
    try {
      srv->bind();
      control::api_options defaults;
      api = std::make_unique<control::api_server>(
          control::api_context{*srv, store, std::move(defaults), opts, opts.seed});
      api->bind({boost::asio::ip::make_address("127.0.0.1"), 0});
      api->start();
    } catch (const std::exception& e) {
      return e.what();
    }
    thread = std::thread([this] { srv->run(); });
    return "";
  }
  // The command has exited, so its connections are closed; the server may not have read their
  // ends yet (a slow machine, a sanitizer build). Stopping now would answer them 421 as if the
  // server had ended them, and a client that left without QUIT would pass `quit`.
  void settle(std::chrono::milliseconds most) {
    const auto until = std::chrono::steady_clock::now() + most;
    while (srv && srv->active_connections() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  void stop() {
    if (!srv) return;
    srv->stop();
    if (thread.joinable()) thread.join();
    if (api) api->stop();
  }
  ~scenario_server() { stop(); }
};

constexpr std::string_view default_user = "mailer@smtpfault.test";
constexpr std::string_view default_password = "smtpfault-secret";

std::vector<std::pair<std::string, std::string>> command_environment(const scenario_server& server,
                                                                     const std::string& name,
                                                                     const test_options& opts) {
  const net::server& srv = *server.srv;
  auto plain = srv.plain_endpoints().front();
  auto tls = srv.tls_endpoints().front();
  std::vector<std::pair<std::string, std::string>> env{
      {"SMTP_HOST", plain.address().to_string()},
      {"SMTP_PORT", std::to_string(plain.port())},
      {"SMTP_TLS_PORT", std::to_string(tls.port())},
      {"SMTP_SERVER", net::endpoint_text(plain)},
      {"SMTPFAULT_API", net::endpoint_text(server.api->local_endpoint())},
      {"SMTPFAULT_SCENARIO", name}};
  if (!opts.ca_file.empty()) env.emplace_back("SMTP_CA_FILE", opts.ca_file);
  // Credentials to log in with, so that a mailer that authenticates only when given them is
  // tested as it is: the first of [auth.users], else a pair like any other (all are taken).
  const auto& users = opts.server.auth_users;
  env.emplace_back("SMTP_USER", users.empty() ? std::string(default_user) : users.front().name);
  env.emplace_back("SMTP_PASSWORD",
                   users.empty() ? std::string(default_password) : users.front().password);
  return env;
}

// The hooks that failed (each distinct error once), else the first custom check that could not
// run.
std::optional<std::string> scenario_error(const script::run_outcome& run,
                                          const std::vector<script::check_result>& checks) {
  if (auto failed = script::failed_hooks(run)) return failed;
  for (const auto& c : checks)
    if (c.script_error) return c.detail;
  return std::nullopt;
}

// A waived check is still run and reported: the reports say what was set aside.
void waive(std::vector<script::check_result>& checks, const std::vector<std::string>& waived) {
  for (auto& c : checks)
    c.waived = std::find(waived.begin(), waived.end(), c.name) != waived.end();
}

}  // namespace

const char* verdict_name(verdict v) {
  switch (v) {
    case verdict::pass:
      return "PASS";
    case verdict::fail:
      return "FAIL";
    case verdict::error:
      return "ERROR";
    case verdict::skip:
      return "SKIP";
  }
  return "?";
}

namespace {

// The scenario with the run's seed, time scale, limits and parameters; nullptr with the result's
// reason on an error.
std::shared_ptr<script::scenario> load_scenario(scenario_result& result, const test_options& opts) {
  script::scenario_options so;
  so.seed = opts.seed;
  so.time_scale = opts.time_scale;
  so.limits.memory_bytes = opts.server.lua_memory;
  so.limits.instructions = opts.server.lua_instructions;
  so.params = scenario_params(opts.server);
  auto loaded = script::scenario::load_named(result.name, so);
  if (!loaded) {
    result.reason = loaded.error();
    return nullptr;
  }
  result.loaded = true;
  result.unread_params = (*loaded)->unread_params();
  result.named_params = (*loaded)->named_params();
  return std::move(*loaded);
}

// serve's store key: each scenario's messages in a folder of its own, STORE/<scenario>, where
// they keep serve's ids (the process id in each), so that a second run adds to the folder.
std::string store_dir_of(const scenario_result& result, const test_options& opts) {
  if (opts.server.store.empty()) return {};
  return (std::filesystem::path(opts.server.store) / result.name).string();
}

// The store ready and the server listening; false with the result's reason on an error.
bool start_server(scenario_result& result, scenario_server& server,
                  std::shared_ptr<script::scenario> sc, const test_options& opts,
                  net::tls_contexts& tls) {
  if (opts.server.store.empty()) {
    // The queue ids in the 250 replies come from the seed: the same seed, scenario and client
    // give the same transcript. The store is the run's own and in memory: no collision.
    char prefix[24];
    std::snprintf(prefix, sizeof prefix, "%016llx", static_cast<unsigned long long>(opts.seed));
    server.store.use_id_prefix(prefix);
  }
  if (auto err = server.store.prepare()) {
    result.reason = "cannot write messages to the store: " + *err;
    return false;
  }
  if (auto err = server.start(std::move(sc), tls, opts.server); !err.empty()) {
    result.reason = "cannot start the server: " + err;
    return false;
  }
  return true;
}

// How the command's runs went, beyond their exit statuses and output (kept in the result).
struct command_runs {
  bool interrupted = false;  // a run was cut short, or never started: no verdict on the mailer
  std::optional<std::chrono::system_clock::time_point> killed_at;  // the first at the timeout
  std::vector<std::chrono::system_clock::time_point> starts;
  bool left_processes = false;
};

// Runs the command as often as the scenario asks; false with the result's reason when it
// could not be started.
bool run_command(scenario_result& result, command_runs& runs, scenario_server& server,
                 script::scenario& sc, const test_options& opts) {
  const auto& expected = sc.expected();
  const auto env = command_environment(server, result.name, opts);
  const auto timeout = proto::millis_from_seconds(opts.timeout, true);
  for (unsigned run = 0; run < expected.runs && !(runs.interrupted = interrupting_signal() != 0);
       ++run) {
    if (run > 0 && expected.run_gap > 0) {
      std::this_thread::sleep_for(proto::millis_from_seconds(expected.run_gap * opts.time_scale));
    }
    runs.starts.push_back(std::chrono::system_clock::now());
    sc.begin_run(run + 1);
    // The command may have had the scenario loaded again (DELETE /api/v1/sessions): that one
    // serves its sessions now.
    if (auto serving = server.srv->current_scenario(); serving && serving.get() != &sc) {
      serving->begin_run(run + 1);
    }
    auto child = run_child(opts.command, env, timeout);
    if (!child.error.empty()) {
      result.reason = child.error;
      return false;
    }
    // When the deadline came: the kill's own closes come after it.
    if (child.exit_code == -1 && !runs.killed_at) runs.killed_at = runs.starts.back() + timeout;
    result.exit_codes.push_back(child.exit_code);
    result.exit_signals.push_back(child.signal);
    runs.left_processes = runs.left_processes || child.left_processes;
    if (expected.runs > 1) result.command_output += "--- run " + std::to_string(run + 1) + "\n";
    result.command_output += child.output;
    runs.interrupted = interrupting_signal() != 0;
    if (runs.interrupted) break;
  }
  return true;
}

// What the checks judge: the runs, the stored messages and the sessions in the order they
// began. The result gets the readable transcript; cut names the sessions whose middle not even
// the checks saw.
script::run_outcome what_happened(scenario_result& result, command_runs& runs,
                                  scenario_server& server, const test_options& opts,
                                  std::string& cut) {
  script::run_outcome run;
  run.exit_codes = result.exit_codes;
  run.exit_signals = result.exit_signals;
  run.left_processes = runs.left_processes;
  for (const auto& m : server.store.messages())
    run.stored.push_back(m);
  run.time_scale = opts.time_scale;
  run.run_starts = runs.starts;
  auto sessions = server.store.sessions();
  // A record without entries has no start to order by (and would break the sort's ordering).
  std::erase_if(sessions, [](const auto& s) { return s->entries.empty(); });
  std::sort(sessions.begin(), sessions.end(),
            [](const auto& a, const auto& b) { return a->entries[0].at < b->entries[0].at; });
  for (const auto& s : sessions) {
    run.sessions.push_back(capture::summarize(*s));
    if (s->dropped > 0) {
      cut += (cut.empty() ? "" : ", ") + s->facts.session_id + " (" + std::to_string(s->dropped) +
             " lines)";
    }
  }
  // From the running total: the store may have forgotten some.
  run.messages = capture::delivered_of(server.store.stored_total(), run.sessions);
  result.transcript = render_transcript(sessions);
  return run;
}

// The checks run and the verdict given. expected: the loaded scenario's; judging: the scenario
// as the sessions met it, whose custom checks run.
void judge(scenario_result& result, const script::run_outcome& run,
           const script::expectations& expected, script::scenario& judging,
           const command_runs& runs, const test_options& opts, const std::string& cut) {
  if (expected.empty()) {
    script::expectations fallback;
    fallback.exit = {"success"};
    result.checks = script::evaluate(fallback, run);
  } else {
    result.checks = script::evaluate(expected, run);
  }
  for (auto& c : judging.run_checks(run))
    result.checks.push_back(std::move(c));
  waive(result.checks, opts.waived);
  result.delivered = run.messages;
  decide(result, run.sessions, opts.server.tls_min_version, !opts.ca_file.empty(), runs.killed_at);
  if (expected.empty() && result.outcome == verdict::pass) {
    // runs = n alone says how often to run, not what to check.
    result.reason = expected.runs > 1
                        ? "the command succeeded in each of its " + std::to_string(expected.runs) +
                              " runs (the scenario states no expectations besides runs: only "
                              "the exit statuses were checked)"
                        : "the command succeeded (the scenario states no expectations: only its "
                          "exit status was checked)";
  }
  if (std::count(result.exit_codes.begin(), result.exit_codes.end(), -1) > 0) {
    char why[96];
    std::snprintf(why, sizeof why, "timeout: the command was killed after %g s", opts.timeout);
    // What a check found besides, unless it is only how the kill ended the run (an exit status,
    // a message or a QUIT that never came): another run may have gone wrong in its own way.
    const std::string found = own_failure(result);
    result.outcome = verdict::fail;
    result.reason =
        why + waiting_for_the_server(run, opts.time_scale, opts.timeout,
                                     runs.killed_at.value_or(std::chrono::system_clock::now()));
    if (!found.empty()) result.reason += "; also " + found;
  }
  if (!cut.empty()) {
    result.reason += "; judged without the middle of sessions past " +
                     std::to_string(checked_entries) + " transcript lines: " + cut;
  }
  // A hook that failed while the mailer ran, or a check that could not run, is the scenario's
  // fault, not the mailer's.
  if (auto why = scenario_error(run, result.checks)) {
    result.outcome = verdict::error;
    result.reason = "scenario error: " + *why;
  }
}

}  // namespace

scenario_result run_scenario(const std::string& name_or_path, const test_options& opts,
                             net::tls_contexts& tls) {
  scenario_result result;
  result.name = name_or_path;
  const auto started = steady::now();
  auto sc = load_scenario(result, opts);
  if (!sc) return result;
  scenario_server server(store_dir_of(result, opts));
  if (!start_server(result, server, sc, opts, tls)) return result;
  command_runs runs;
  if (!run_command(result, runs, server, *sc, opts)) return result;
  if (!runs.interrupted) server.settle(std::chrono::seconds(2));
  server.stop();
  std::string cut;
  const auto run = what_happened(result, runs, server, opts, cut);
  // The scenario as the sessions met it: a restart over the API gave it a new state, and its
  // checks see that one (another scenario PUT over the API is not the one under test).
  auto judging = server.srv->current_scenario();
  if (!judging || judging->name() != sc->name()) judging = sc;
  judge(result, run, sc->expected(), *judging, runs, opts, cut);
  if (runs.interrupted) {
    result.outcome = verdict::error;
    result.reason = interruption();
  }
  result.seconds = std::chrono::duration<double>(steady::now() - started).count();
  return result;
}

}  // namespace smtpfault::app
