// JUnit XML of a run's results: a suite per script or run, a test case per scenario or step,
// in the form CI systems render.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>

#include "app/test_report.hpp"
#include "proto/utf8.hpp"

namespace smtpfault::app {

namespace {

std::string failure_text(const scenario_result& r) {
  std::string text;
  for (const auto& c : r.checks) {
    const char* mark = c.passed ? "ok    " : c.waived ? "waived " : "FAIL  ";
    text += mark + c.name + ": " + c.detail + "\n";
  }
  if (r.checks.empty()) text = r.reason + "\n";
  return text;
}

// What kind of failure, for CI views that group by it: the check the reason names
// ("retried_after_4xx: expected ..."), else the reason's first words ("timeout", "scenario
// error").
std::string failure_type(const scenario_result& r) {
  if (!r.kind.empty()) return r.kind;
  const auto colon = r.reason.find(':');
  if (colon == std::string::npos || colon == 0)
    return r.outcome == verdict::fail ? "failure" : "error";
  const std::string_view head = std::string_view(r.reason).substr(0, colon);
  // "greylist.lua:7: ...": a scenario that did not load, or failed in a hook or check.
  if (head.ends_with(".lua")) return "scenario error";
  // A check's name ("retried_after_4xx: ..."), not a path or a sentence ("cannot run /x: ...",
  // "mail.toml:3:1: ..."): a type groups results, so it is one of few words.
  const bool a_name =
      head.size() <= 40 && std::all_of(head.begin(), head.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == ' ';
      });
  if (a_name) return std::string(head);
  return r.outcome == verdict::fail ? "failure" : "error";
}

}  // namespace

std::string xml_escape(std::string_view raw) {
  // The report says encoding="UTF-8": a stray octet (a command's Latin-1 output) becomes U+FFFD.
  const std::string text = proto::utf8_repaired(raw);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    // U+FFFE and U+FFFF are valid UTF-8 but no XML 1.0 character: a parser stops at them.
    if (c == 0xEF &&
        (text.compare(i + 1, 2, "\xBF\xBE") == 0 || text.compare(i + 1, 2, "\xBF\xBF") == 0)) {
      out += "\xEF\xBF\xBD";
      i += 2;
      continue;
    }
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':
        out += "&#13;";  // a parser turns a literal CR into LF (XML 1.0 2.11)
        break;
      default:
        // XML 1.0 allows only tab, LF and CR below 0x20.
        out += (c < 0x20 && c != '\t' && c != '\n') ? '?' : static_cast<char>(c);
    }
  }
  return out;
}

namespace {

// What CI views show beside a suite: when it started (UTC, in the Ant format the strict JUnit
// schema takes, which has no zone) and on which machine.
struct suite_origin {
  std::chrono::system_clock::time_point written;
  std::string host;
};

std::string suite_timestamp(const suite_origin& origin, double seconds) {
  const auto started =
      origin.written - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                           std::chrono::duration<double>(seconds));
  const std::time_t t = std::chrono::system_clock::to_time_t(started);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  return text;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

// The checks --waive set aside in any of the results, each once, joined with ", ".
std::string waived_checks(const std::vector<scenario_result>& results) {
  std::vector<std::string> names;
  for (const auto& r : results) {
    for (const auto& c : r.checks) {
      if (c.waived && std::find(names.begin(), names.end(), c.name) == names.end()) {
        names.push_back(c.name);
      }
    }
  }
  std::string joined;
  for (const auto& name : names)
    joined += (joined.empty() ? "" : ", ") + name;
  return joined;
}

// The suite's properties: the seed, the waived checks (for the whole suite: the schema CI
// systems read has no properties inside a test case) and the run's notes.
std::string properties_xml(const std::vector<scenario_result>& results,
                           std::optional<std::uint64_t> seed) {
  const std::string waived = waived_checks(results);
  const auto notes = run_notes(results);
  if (!seed && waived.empty() && notes.empty()) return "";
  std::string xml = "    <properties>\n";
  if (seed) xml += "      <property name=\"seed\" value=\"" + std::to_string(*seed) + "\"/>\n";
  if (!waived.empty())
    xml += "      <property name=\"waived\" value=\"" + xml_escape(waived) + "\"/>\n";
  // Named apart, for CI tools that key properties by name.
  for (std::size_t i = 0; i < notes.size(); ++i) {
    xml += "      <property name=\"note " + std::to_string(i + 1) + "\" value=\"" +
           xml_escape(notes[i]) + "\"/>\n";
  }
  return xml + "    </properties>\n";
}

// One result as a test case; name: as the suite tells it apart from others of its name.
std::string testcase_xml(const scenario_result& r, const std::string& name,
                         const std::string& class_name) {
  char attrs[64];
  std::snprintf(attrs, sizeof attrs, "\" time=\"%.3f\"", r.seconds);
  std::string xml =
      "    <testcase classname=\"" + class_name + "\" name=\"" + xml_escape(name) + attrs + ">\n";
  // Above the transcript in its output, where a CI view shows a passing case's details (JUnit
  // has no message for a pass): what a pass says beyond that all held ("not exercised: ...",
  // "not judged: ..."), and what --waive set aside.
  std::string heading;
  if (r.outcome == verdict::pass && r.reason != all_held && r.reason != command_succeeded) {
    heading += "PASS: " + r.reason + "\n";
  }
  for (const auto& c : r.checks) {
    if (c.waived && !c.passed) heading += "waived " + c.name + ": " + c.detail + "\n";
  }
  if (r.outcome == verdict::skip) {
    xml += "      <skipped message=\"" + xml_escape(r.reason) + "\"/>\n";
  } else if (r.outcome != verdict::pass) {
    const char* tag = r.outcome == verdict::fail ? "failure" : "error";
    xml += std::string("      <") + tag + " message=\"" + xml_escape(r.reason) + "\" type=\"" +
           xml_escape(failure_type(r)) + "\">" + xml_escape(failure_text(r)) + "</" + tag + ">\n";
  }
  xml += "      <system-out>" +
         xml_escape(heading.empty() ? r.transcript : heading + "\n" + r.transcript) +
         "</system-out>\n";
  if (!r.command_output.empty()) {
    xml += "      <system-err>" + xml_escape(r.command_output) + "</system-err>\n";
  }
  return xml + "    </testcase>\n";
}

std::string junit_suite_xml(const junit_suite& suite, std::optional<std::uint64_t> seed,
                            const suite_origin& origin) {
  const auto& results = suite.results;
  const auto& names = suite.names;
  int failures = 0, errors = 0, skipped = 0;
  double total = 0;
  for (const auto& r : results) {
    failures += r.outcome == verdict::fail;
    errors += r.outcome == verdict::error;
    skipped += r.outcome == verdict::skip;
    total += r.seconds;
  }
  const std::string class_name = xml_escape(names.class_name);
  const double seconds = names.seconds >= 0 ? names.seconds : total;
  char counts[192];
  std::snprintf(counts, sizeof counts,
                "\" tests=\"%zu\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%.3f\"",
                results.size(), failures, errors, skipped, seconds);
  std::string xml = "  <testsuite name=\"" + xml_escape(names.suite) + counts + " timestamp=\"" +
                    suite_timestamp(origin, seconds) + "\" hostname=\"" + xml_escape(origin.host) +
                    "\">\n";
  xml += properties_xml(results, seed);
  // CI views key test cases by name: one given twice (a scenario run twice, two steps that say
  // the same) is told apart by its order, "name (2)", and keeps that name from run to run.
  std::map<std::string, int> seen;
  for (const auto& r : results) {
    std::string name = r.name;
    if (const int n = ++seen[r.name]; n > 1) name += " (" + std::to_string(n) + ")";
    xml += testcase_xml(r, name, class_name);
  }
  return xml + "  </testsuite>\n";
}

}  // namespace

std::optional<std::string> write_junit_suites(const std::string& path,
                                              const std::vector<junit_suite>& suites,
                                              std::optional<std::uint64_t> seed) {
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n";
  const suite_origin origin{std::chrono::system_clock::now(), host_name()};
  for (const auto& suite : suites)
    xml += junit_suite_xml(suite, seed, origin);
  xml += "</testsuites>\n";
  return write_report_file(path, xml);
}

std::optional<std::string> write_junit(const std::string& path,
                                       const std::vector<scenario_result>& results,
                                       std::optional<std::uint64_t> seed,
                                       const junit_names& names) {
  return write_junit_suites(path, {junit_suite{names, results}}, seed);
}

}  // namespace smtpfault::app
