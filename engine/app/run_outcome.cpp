// What a client script's run came to: verdict, exit status, printed summary, report parts.
#include "app/run_outcome.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "app/log_lines.hpp"
#include "proto/reply_stream.hpp"
#include "script/catalogue.hpp"

namespace smtpfault::app {

namespace {

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
// name, the wire text a detail quotes and a table reported are escaped already, by the client
// library: a backslash here is one it wrote (escaping it again showed '\\xff' for '\xff').
std::string shown(std::string_view text) {
  return proto::printable(text, 300, false);  // controls escaped as in the transcript
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
                                const run_context& ctx) {
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
          {"target", ctx.target},
          {"seed", ctx.seed},
          {"verdict", verdict_of(r, s)},
          {"exit_code", run_exit_status(r, s)},
          {"error", r.error},
          {"seconds", r.seconds},
          {"steps", std::move(steps)},
          {"report", std::move(report)},
          {"connections", std::move(conns)}};
}

}  // namespace

junit_names junit_names_of(const std::string& script_name) {
  auto base = script::shown_name(script_name);
  return junit_names_of_path(base.substr(base.find_last_of('/') + 1));
}

junit_names junit_names_of_path(const std::string& script_name) {
  auto name = script::shown_name(script_name);
  if (name.ends_with(".lua")) name.resize(name.size() - 4);
  // A class name is dotted: checks/smoke is smtpfault.run.checks.smoke (/tmp/x and ./x too).
  auto dotted = name.substr(std::min(name.find_first_not_of("./"), name.size()));
  std::replace(dotted.begin(), dotted.end(), '/', '.');
  return {"smtpfault run " + name, "smtpfault.run." + dotted};
}

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
  print_errors(r, s);
}

void print_summary(const net::client_run_result& r, const script::client_script& s) {
  if (!s.steps().empty()) std::printf("\n");
  for (const auto& step : s.steps()) {
    std::printf("%s %s %s%s%s\n",
                step.skipped  ? "skip"
                : step.passed ? "ok  "
                              : "FAIL",
                step.where.c_str(), shown(step.name).c_str(), step.detail.empty() ? "" : ": ",
                shown(step.detail).c_str());
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

script_outcome outcome_of(const net::client_run_result& r, const script::client_script& s,
                          const run_context& ctx) {
  script_outcome o;
  o.name = script::shown_name(s.name());
  o.verdict = verdict_of(r, s);
  o.exit_status = run_exit_status(r, s);
  if (r.how != net::client_run_result::ending::finished) o.error = r.error;
  const auto n = count_steps(s);
  o.passed = n.passed;
  o.failed = n.failed;
  o.skipped = n.skipped;
  o.seconds = r.seconds;
  o.interrupted = r.how == net::client_run_result::ending::interrupted;
  o.junit_cases = junit_cases(r, s);
  o.junit = junit_names_of(s.name());
  o.json = json_report(r, s, ctx);
  return o;
}

script_outcome load_error_outcome(const std::string& script, const std::string& error,
                                  const run_context& ctx) {
  script_outcome o;
  o.name = script::shown_name(script);
  o.verdict = "error";
  o.exit_status = exit_script;
  o.error = error;
  scenario_result c;
  c.name = o.name;
  c.outcome = verdict::error;
  c.reason = error;
  o.junit_cases.push_back(std::move(c));
  o.junit = junit_names_of(script);
  // The keys of a run's report, empty.
  o.json = {{"script", script},
            {"target", ctx.target},
            {"seed", ctx.seed},
            {"verdict", "error"},
            {"exit_code", exit_script},
            {"error", error},
            {"seconds", 0},
            {"steps", boost::json::array{}},
            {"report", boost::json::object{}},
            {"connections", boost::json::array{}}};
  return o;
}

}  // namespace smtpfault::app
