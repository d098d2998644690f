// `smtpfault run`: a client scenario against any SMTP server, with a verdict per expectation.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "app/cli_args.hpp"
#include "app/command_flags.hpp"
#include "app/commands.hpp"
#include "app/log_lines.hpp"
#include "app/test_report.hpp"
#include "app/version.hpp"
#include "config/loader.hpp"
#include "json/json_text.hpp"
#include "net/script_client.hpp"
#include "proto/duration.hpp"
#include "proto/reply_stream.hpp"
#include "script/catalogue.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

namespace {

// Exit statuses of `smtpfault run`.
constexpr int exit_pass = 0, exit_fail = 1, exit_script = 2, exit_target = 3;

void print_run_help() {
  std::printf(
      "usage: smtpfault run CLIENT.lua|NAME [options]\n"
      "\n"
      "Runs a client scenario (a .lua path, or a built-in probe such as probe-smuggling) against\n"
      "an SMTP server, prints each connection's transcript and a verdict per expectation.\n"
      "Exit 0 when every expectation held (or the script skipped: nothing to probe), 1 when\n"
      "one failed, 2 for a script or usage error (file:line: message), 3 when the target\n"
      "could not be reached, STARTTLS was refused or a TLS handshake the script needed failed;\n"
      "130 or 143 when SIGINT or SIGTERM stopped it (the reports are still written, with what\n"
      "happened until then).\n"
      "\n"
      "  --target HOST:PORT      the server for connect{} (default 127.0.0.1:2525)\n"
      "  --tls-target HOST:PORT  the implicit-TLS port for connect{tls=true}\n"
      "  --timeout SECONDS       default deadline of every wait: connect, reply, write,\n"
      "                          handshake (default 30)\n"
      "  --param KEY=VALUE       a value for the script's params table, repeatable\n"
      "  --seed N                seed of math.random (default: from the clock; printed)\n"
      "  --junit FILE            JUnit XML: one test case per expectation\n"
      "  --json FILE             JSON: verdicts, report values and transcripts\n"
      "  --quiet                 print verdicts only, not the transcript\n"
      "  --log-format F          text (default), json (JSON lines: the transcript, a \"step\"\n"
      "                          per verdict, a \"report\" per value, the \"verdict\"), or\n"
      "                          none (as --quiet)\n"
      "  --config FILE           read these options from the file's [run] table (env\n"
      "                          SMTPFAULT_CONFIG): target = \"mx:25\", param = [\"k=v\"]\n"
      "  --help, --version\n"
      "\n"
      "Every option is also an SMTPFAULT_RUN_* variable (SMTPFAULT_RUN_TLS_TARGET,\n"
      "SMTPFAULT_RUN_QUIET=1, SMTPFAULT_RUN_PARAM=k=v,k2=v2). The command line wins over the\n"
      "environment, which wins over the file.\n"
      "\n"
      "Built-in probes: see 'smtpfault list' and docs/client-scenarios.md.\n");
}

struct run_settings {
  std::string script;
  std::string junit;
  std::string json;
  bool quiet = false;
  output_format format = output_format::text;
  script::client_options opts;

  // "127.0.0.1:2525", "[::1]:2525": an IPv6 address in brackets.
  // "127.0.0.1:2525", with the implicit-TLS target when there is one: a script may use only it.
  std::string target_text() const {
    std::string text = config::endpoint{opts.target.host, opts.target.port}.to_string();
    if (opts.target.tls_port != 0) {
      const auto& host = opts.target.tls_host.empty() ? opts.target.host : opts.target.tls_host;
      text += " (implicit TLS " + config::endpoint{host, opts.target.tls_port}.to_string() + ")";
    }
    return text;
  }
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "smtpfault run: %s (see smtpfault run --help)\n", msg.c_str());
  return exit_script;
}

std::optional<std::string> apply_flag(const flag_value& f, run_settings& s) {
  auto& o = s.opts;
  if (f.name == "target" || f.name == "tls-target") {
    auto ep = config::parse_target(f.value);
    if (!ep) return f.origin + ": " + ep.error();
    (f.name == "target" ? o.target.host : o.target.tls_host) = ep->host;
    (f.name == "target" ? o.target.port : o.target.tls_port) = ep->port;
  } else if (f.name == "timeout") {
    auto secs = parse_seconds(f.value);
    if (!secs) return f.origin + ": " + secs.error();
    o.timeout = proto::millis_from_seconds(*secs, true);
  } else if (f.name == "seed") {
    auto seed = parse_whole_number(f.value);
    if (!seed)
      return f.origin + ": expected a whole number from 0 to 2^64-1, got '" + f.value + "'";
    o.seed = *seed;
  } else if (f.name == "param") {
    auto eq = f.value.find('=');
    if (eq == std::string::npos || eq == 0) {
      return f.origin + ": expected KEY=VALUE, got '" + f.value + "'";
    }
    o.params[f.value.substr(0, eq)] = f.value.substr(eq + 1);
  } else if (f.name == "junit") {
    s.junit = f.value;
  } else if (f.name == "json") {
    s.json = f.value;
  } else if (f.name == "quiet") {
    s.quiet = true;
  } else if (f.name == "log-format") {
    return parse_output_format(f.origin, f.value, s.format);
  }
  return std::nullopt;
}

bool any_step_failed(const script::client_script& s) {
  for (const auto& step : s.steps())
    if (!step.passed && !step.skipped) return true;
  return false;
}

// A script error after a failed expectation is most often that failure's consequence (`local r
// = ehlo()` is nil when the server closed, and `r.extensions` is then an error): the run is a
// failure, exit 1, and the error is still shown. A script error before any failure is exit 2.
bool error_after_failure(const net::client_run_result& r, const script::client_script& s) {
  return r.how == net::client_run_result::ending::script_error && any_step_failed(s);
}

const char* verdict_of(const net::client_run_result& r, const script::client_script& s) {
  if (error_after_failure(r, s)) return "fail";
  if (r.how == net::client_run_result::ending::script_error) return "error";
  if (r.how == net::client_run_result::ending::target_error) return "error";
  if (r.how == net::client_run_result::ending::interrupted) return "error";
  if (any_step_failed(s)) return "fail";
  bool skipped = false;
  for (const auto& step : s.steps())
    skipped = skipped || step.skipped;
  return skipped ? "skipped" : "pass";
}

int run_exit_status(const net::client_run_result& r, const script::client_script& s) {
  if (error_after_failure(r, s)) return exit_fail;
  if (r.how == net::client_run_result::ending::script_error) return exit_script;
  if (r.how == net::client_run_result::ending::target_error) return exit_target;
  if (r.how == net::client_run_result::ending::interrupted) return 128 + r.signal;  // as a shell
  return std::string(verdict_of(r, s)) == "fail" ? exit_fail : exit_pass;
}

std::string transcript_of(const net::client_run_result& r, int conn) {
  std::string text;
  for (const auto& c : r.connections) {
    if (conn != 0 && c.id != conn) continue;
    for (const auto& l : c.lines)
      text += "[" + std::to_string(c.id) + "] " + l + "\n";
  }
  return text;
}

// A verdict's text as a terminal shows it: one line of UTF-8, and not a page long (a reply
// line of 2,000 octets quoted whole). The JSON and JUnit reports keep the whole text. A step's
// name is escaped already, by the client library.
std::string shown(std::string_view text) {
  return proto::printable(text, 300);  // controls escaped as in the transcript
}

// A report value as what it was in Lua: a number stays a number (one JSON cannot hold, NaN or
// an infinity, stays text), a boolean a boolean, nil null; a table is its Lua rendering.
boost::json::value json_value(const script::client_report& rep) {
  using kind = script::client_report::kind;
  switch (rep.type) {
    case kind::integer:
      return rep.integer;
    case kind::number:
      if (std::isfinite(rep.number)) return rep.number;
      // Not the platform's spelling ("-nan"): one a reader can test for.
      return boost::json::string(std::isnan(rep.number) ? "nan" : rep.number > 0 ? "inf" : "-inf");
    case kind::boolean:
      return rep.integer != 0;
    case kind::nil:
      return nullptr;
    case kind::text:
      break;
  }
  return boost::json::string(rep.text);
}

struct step_counts {
  int passed = 0, failed = 0, skipped = 0;
};

step_counts count_steps(const script::client_script& s) {
  step_counts n;
  for (const auto& step : s.steps())
    (step.skipped ? n.skipped : step.passed ? n.passed : n.failed)++;
  return n;
}

// A verdict as the JSON report and the JSON lines give it.
boost::json::object step_json(const script::client_step& st) {
  return {{"passed", st.passed},
          {"skipped", st.skipped},
          {"name", st.name},
          {"detail", st.detail},
          {"where", st.where.ends_with(':') ? st.where.substr(0, st.where.size() - 1) : st.where},
          {"connection", st.conn},
          {"seconds", st.seconds}};
}

// What ended the run early, on stderr (whatever the format of stdout).
void print_errors(const net::client_run_result& r, const script::client_script& s) {
  if (r.how == net::client_run_result::ending::script_error) {
    // Whole, but escaped: an error may quote a reply, and a script's message is any string.
    std::fprintf(stderr, "smtpfault run: script error%s: %s\n",
                 error_after_failure(r, s) ? " after a failed expectation" : "",
                 proto::printable(r.error, std::string::npos).c_str());
  } else if (r.how != net::client_run_result::ending::finished) {
    std::fprintf(stderr, "smtpfault run: %s\n",
                 proto::printable(r.error, std::string::npos).c_str());
  }
}

// The same as JSON lines: a "step" per verdict, a "report" per value, then the "verdict".
void print_summary_json(const net::client_run_result& r, const script::client_script& s) {
  for (const auto& step : s.steps()) {
    boost::json::object line{{"step", step.skipped ? "skip" : step.passed ? "ok" : "fail"}};
    for (auto& [k, v] : step_json(step))
      line[k] = std::move(v);
    print_json_line(line);
  }
  for (const auto& rep : s.reports())
    print_json_line({{"report", rep.key}, {"value", json_value(rep)}});
  const auto n = count_steps(s);
  boost::json::object summary{{"verdict", verdict_of(r, s)}, {"passed", n.passed},
                              {"failed", n.failed},          {"skipped", n.skipped},
                              {"seconds", r.seconds},        {"seed", s.options().seed}};
  if (r.how != net::client_run_result::ending::finished) summary["error"] = r.error;
  print_json_line(summary);
}

void print_summary(const net::client_run_result& r, const script::client_script& s) {
  if (!s.steps().empty()) std::printf("\n");
  for (const auto& step : s.steps()) {
    std::printf("%s %s %s%s%s\n",
                step.skipped  ? "skip"
                : step.passed ? "ok  "
                              : "FAIL",
                step.where.c_str(), proto::printable(step.name, 300, false).c_str(),
                step.detail.empty() ? "" : ": ", shown(step.detail).c_str());
  }
  if (!s.reports().empty()) std::printf("\nreport:\n");
  for (const auto& rep : s.reports()) {
    // An empty string is not nothing: "" where nil prints nil.
    const bool empty_text = rep.type == script::client_report::kind::text && rep.text.empty();
    std::printf("  %s: %s\n", shown(rep.key).c_str(),
                empty_text ? "\"\"" : shown(rep.text).c_str());
  }
  const auto n = count_steps(s);
  const std::string skips = n.skipped ? ", " + std::to_string(n.skipped) + " skipped" : "";
  // What ended the run early, beside the counts: stdout alone should say why it is "error".
  const bool ended_early = r.how != net::client_run_result::ending::finished && !r.error.empty();
  const std::string why = ended_early ? " (" + shown(r.error) + ")" : "";
  std::printf("\n%s%s: %d passed, %d failed%s (%.2fs, seed %llu)\n", verdict_of(r, s), why.c_str(),
              n.passed, n.failed, skips.c_str(), r.seconds,
              static_cast<unsigned long long>(s.options().seed));
  std::fflush(stdout);
  print_errors(r, s);
}

// What ended a run early, as JUnit's failure type.
const char* ending_kind(net::client_run_result::ending how) {
  switch (how) {
    case net::client_run_result::ending::script_error:
      return "script error";
    case net::client_run_result::ending::target_error:
      return "target error";
    case net::client_run_result::ending::interrupted:
      return "interrupted";
    case net::client_run_result::ending::finished:
      break;
  }
  return "error";
}

std::vector<scenario_result> junit_cases(const net::client_run_result& r,
                                         const script::client_script& s) {
  std::vector<scenario_result> cases;
  // A test case keeps its name while the script around it is edited: no line number in it (the
  // failure message has the place; write_junit numbers steps of one name).
  for (const auto& step : s.steps()) {
    scenario_result c;
    c.name = step.name;
    c.outcome = step.skipped ? verdict::skip : step.passed ? verdict::pass : verdict::fail;
    c.reason = step.detail.empty() ? step.where : step.where + " " + step.detail;
    c.kind = "failed step";
    c.seconds = step.seconds;
    if (!step.passed && !step.skipped) c.transcript = transcript_of(r, step.conn);
    cases.push_back(std::move(c));
  }
  if (r.how != net::client_run_result::ending::finished || cases.empty()) {
    scenario_result c;
    c.name = s.name();
    c.outcome = r.how == net::client_run_result::ending::finished ? verdict::pass : verdict::error;
    c.reason = r.error;
    c.kind = ending_kind(r.how);
    // The time after the last step (a wait an interrupt cut short): the suite's time is the run's.
    double steps_time = 0;
    for (const auto& step : s.steps())
      steps_time += step.seconds;
    c.seconds = std::max(0.0, r.seconds - steps_time);
    c.transcript = transcript_of(r, 0);
    cases.push_back(std::move(c));
  }
  return cases;
}

boost::json::object json_report(const net::client_run_result& r, const script::client_script& s,
                                const run_settings& rs) {
  boost::json::array steps, conns;
  for (const auto& st : s.steps())
    steps.push_back(step_json(st));
  boost::json::object report;
  for (const auto& rep : s.reports())
    report[rep.key] = json_value(rep);
  for (const auto& c : r.connections) {
    boost::json::array lines;
    for (const auto& l : c.lines)
      lines.push_back(boost::json::string(l));
    conns.push_back({{"id", c.id}, {"peer", c.peer}, {"transcript", std::move(lines)}});
  }
  return {{"script", s.name()},
          {"target", rs.target_text()},
          {"seed", rs.opts.seed},
          {"verdict", verdict_of(r, s)},
          {"exit_code", run_exit_status(r, s)},
          {"error", r.error},
          {"seconds", r.seconds},
          {"steps", std::move(steps)},
          {"report", std::move(report)},
          {"connections", std::move(conns)}};
}

// A report that cannot be written is found before the run, not after it (where its exit 2 would
// also hide the run's own status).
std::optional<std::string> unwritable_reports(const run_settings& rs) {
  for (const auto& [flag, path] : {std::pair{"--junit", rs.junit}, std::pair{"--json", rs.json}}) {
    if (path.empty()) continue;
    if (auto err = unwritable_report(path)) return std::string(flag) + " " + path + ": " + *err;
  }
  return std::nullopt;
}

// JUnit names after the script ("probe-pipelining", "mailer-checks"), so that the reports of
// several runs stay apart when a CI view merges them.
junit_names junit_names_of(const std::string& script_name) {
  auto base = script::shown_name(script_name);
  base = base.substr(base.find_last_of('/') + 1);
  if (base.ends_with(".lua")) base.resize(base.size() - 4);
  return {"smtpfault run " + base, "smtpfault.run." + base};
}

int write_run_reports(const net::client_run_result& r, const script::client_script& s,
                      const run_settings& rs) {
  std::optional<std::string> err;
  if (!rs.junit.empty()) {
    err = write_junit(rs.junit, junit_cases(r, s), rs.opts.seed, junit_names_of(s.name()));
  }
  if (!err && !rs.json.empty()) {
    err = write_report_file(rs.json, json::json_text(json_report(r, s, rs)) + "\n");
  }
  if (err) std::fprintf(stderr, "smtpfault run: %s\n", err->c_str());
  return err ? exit_script : run_exit_status(r, s);
}

// A script that does not load still leaves the reports CI looks for, with the error in them:
// a missing file would pass unnoticed in some CI views.
void write_load_error_reports(const run_settings& rs, const std::string& error) {
  std::optional<std::string> err;
  if (!rs.junit.empty()) {
    scenario_result c;
    c.name = script::shown_name(rs.script);
    c.outcome = verdict::error;
    c.reason = error;
    err = write_junit(rs.junit, {c}, rs.opts.seed, junit_names_of(rs.script));
  }
  if (!err && !rs.json.empty()) {
    boost::json::object doc{{"script", rs.script},           {"target", rs.target_text()},
                            {"seed", rs.opts.seed},          {"verdict", "error"},
                            {"exit_code", exit_script},      {"error", error},
                            {"steps", boost::json::array{}}, {"connections", boost::json::array{}}};
    err = write_report_file(rs.json, json::json_text(doc) + "\n");
  }
  if (err) std::fprintf(stderr, "smtpfault run: %s\n", err->c_str());
}

// The [lua] limits (lua.memory, lua.instructions and their SMTPFAULT_LUA_* variables) bound a
// client script as they bound a scenario: a script that builds a 100 MB message needs more
// memory. A script's instructions are counted over its whole run, so its own default (far
// above a hook call's) stays unless the setting is given.
void take_lua_limits(const config::settings& s, script::sandbox_limits& limits) {
  limits.memory_bytes = s.lua_memory;
  if (s.lua_instructions != config::default_lua_instructions)
    limits.instructions = s.lua_instructions;
}

}  // namespace

std::optional<std::string> check_run_values(const std::vector<flag_value>& flags) {
  run_settings scratch;
  for (const auto& f : flags)
    if (auto err = apply_flag(f, scratch)) return err;
  return std::nullopt;
}

int run_command(const std::vector<std::string>& argv, char** envp) {
  // The transcript is shown as it happens, also in a file or a pipe (a CI log): a run that is
  // killed still leaves what it did.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  parsed_args args;
  const auto& known = run_flags().flags;
  if (auto err = parse_args(argv, known, args)) return usage_error(*err);
  // The server's settings from the file, then the variables: run takes its Lua limits.
  config::settings server;
  if (auto err = add_configured_flags(run_flags().config, known, envp, args, &server)) {
    std::fprintf(stderr, "smtpfault run: %s\n", err->c_str());
    return exit_script;
  }
  if (auto err = check_server_variables(envp, server)) {
    std::fprintf(stderr, "smtpfault run: %s\n", err->c_str());
    return exit_script;
  }
  run_settings rs;
  take_lua_limits(server, rs.opts.limits);
  rs.opts.target.host = "127.0.0.1";
  rs.opts.target.port = 2525;
  rs.opts.seed = script::random_seed();
  for (const auto& f : args.flags) {
    if (f.name == "help") return print_run_help(), 0;
    if (f.name == "version") return std::printf("smtpfault %s\n", version), 0;
    if (auto err = apply_flag(f, rs)) return usage_error(*err);
  }
  if (args.positional.size() != 1) return usage_error("name exactly one client scenario");
  rs.script = args.positional[0];
  if (auto err = unwritable_reports(rs)) return usage_error(*err);
  auto script = script::client_script::load_named(rs.script, rs.opts);
  if (!script) {
    std::fprintf(stderr, "smtpfault run: %s\n", script.error().c_str());
    write_load_error_reports(rs, script.error());
    return exit_script;
  }
  auto& s = **script;
  const bool json_lines = rs.format == output_format::json;
  if (json_lines) {
    print_json_line({{"run", script::shown_name(s.name())},
                     {"target", rs.target_text()},
                     {"seed", rs.opts.seed}});
  } else {
    std::printf("smtpfault run: %s against %s (seed %llu)\n", script::shown_name(s.name()).c_str(),
                rs.target_text().c_str(), static_cast<unsigned long long>(rs.opts.seed));
  }
  auto result = net::run_client_script(s, [&](int conn, std::string_view line) {
    if (rs.quiet || rs.format == output_format::none) return;
    if (json_lines) return print_json_line(transcript_fields(line, conn));
    std::printf("[%d] %.*s\n", conn, static_cast<int>(line.size()), line.data());
  });
  if (json_lines) {
    print_summary_json(result, s);
    print_errors(result, s);
  } else {
    print_summary(result, s);
  }
  return write_run_reports(result, s, rs);
}

}  // namespace smtpfault::app
