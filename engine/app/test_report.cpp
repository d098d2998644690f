#include "app/test_report.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "json/json_text.hpp"
#include "proto/near_miss.hpp"
#include "proto/utf8.hpp"
#include "session/transcript.hpp"

namespace smtpfault::app {

namespace {

const char* colour_of(verdict v) {
  switch (v) {
    case verdict::pass:
      return "\033[32m";
    case verdict::fail:
      return "\033[31m";
    case verdict::error:
      return "\033[33m";
    case verdict::skip:
      return "\033[36m";
  }
  return "";
}

}  // namespace

std::optional<std::string> write_report_file(const std::string& path, const std::string& text) {
  auto write_to = [&](const std::string& file) -> std::optional<std::string> {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    if (!out) return path + ": cannot write: " + std::strerror(errno);
    out << text;
    out.close();
    if (!out) return path + ": write failed";
    return std::nullopt;
  };
  // A regular file is written beside and renamed into place: a run killed meanwhile leaves the
  // last whole report (or none), never half of one. /dev/stdout, a pipe, or a folder where
  // nothing new can be made is written to directly.
  struct stat st {};
  const bool special = ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
  const std::string partial = path + ".partial";
  if (special || write_to(partial)) return write_to(path);
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    return write_to(path);
  }
  return std::nullopt;
}

std::optional<std::string> unwritable_report(const std::string& path) {
  namespace fs = std::filesystem;
  // Not standard output, as "-" means to many tools: that carries the table and the steps.
  if (path == "-") return std::string("a report goes to a file (standard output has the table)");
  const fs::path dir = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : ".";
  std::error_code ec;
  // A CI job names its report inside a folder of reports that nothing has made yet, as
  // --store DIR may be: made, with its parents.
  if (!fs::is_directory(dir, ec) && !fs::create_directories(dir, ec) && ec) {
    return "cannot make the directory " + dir.string() + ": " + ec.message();
  }
  // Opened for real, not judged by access(2): root passes every permission check, yet cannot
  // create a file in /proc or on a read-only mount.
  if (fs::exists(path, ec)) {
    if (fs::is_directory(path, ec)) return "is a directory";
    // Non-blocking: a FIFO without a reader must not hold the run here.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return std::string("cannot write: ") + std::strerror(errno);
    ::close(fd);
    return std::nullopt;
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create a file in " + dir.string() + ": " + std::strerror(errno);
  ::close(fd);
  ::unlink(path.c_str());
  return std::nullopt;
}

std::optional<std::string> one_file_for_both_reports(const std::string& junit,
                                                     const std::string& json) {
  namespace fs = std::filesystem;
  if (junit.empty() || json.empty()) return std::nullopt;
  std::error_code junit_ec, json_ec;
  const auto a = fs::weakly_canonical(junit, junit_ec), b = fs::weakly_canonical(json, json_ec);
  if (junit_ec || json_ec ? junit != json : a != b) return std::nullopt;
  return "--junit " + junit + " and --json " + json +
         " name the same file: the second report would replace the first";
}

namespace {

// One line of a command's output as a terminal may show it: control characters (C0, DEL, C1,
// so no escape sequence acts) as '?', stray octets as U+FFFD, cut after 200 octets at a
// character boundary.
std::string terminal_safe(std::string_view raw) {
  std::string out;
  for (std::size_t i = 0; i < raw.size();) {
    if (out.size() >= 200) return out + "...";
    const std::size_t n = proto::utf8_sequence_length(raw, i);
    const auto c = static_cast<unsigned char>(raw[i]);
    const bool control = (n == 1 && ((c < 0x20 && c != '\t') || c == 0x7F)) ||
                         (n == 2 && c == 0xC2 && static_cast<unsigned char>(raw[i + 1]) < 0xA0);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
    } else if (control) {
      out += '?';
    } else {
      out.append(raw.substr(i, n));
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

// A stack trace's line that says where, not what: "    at f (file:1:2)" (Java, Node.js, .NET),
// "\tfrom file:1:in `f'" (Ruby), "\t... 3 more" (Java). Those languages print the error first
// and its frames after it, so the last lines of a crash would be frames only.
bool stack_frame(std::string_view line) {
  const auto indent = line.find_first_not_of(" \t");
  if (indent == 0 || indent == std::string_view::npos) return false;
  line.remove_prefix(indent);
  // A frame names a place: "file:line" or "method(...)"; "  at most 3 tries" is no frame.
  const bool place = line.find_first_of(":(") != std::string_view::npos;
  return ((line.starts_with("at ") || line.starts_with("from ")) && place) ||
         (line.starts_with("... ") && line.ends_with(" more"));
}

// The last few non-empty lines the command printed (often the cause), stack frames left out and
// counted. Of a scenario that runs the command several times, they come after the runner's
// "--- run N" line of the run they are from: the reason may be about another run.
std::vector<std::string> last_output_lines(std::string_view output, std::size_t count) {
  std::vector<std::string> lines;
  std::size_t frames = 0;
  std::size_t end = output.size();
  while (end > 0) {
    const auto start = output.rfind('\n', end - 1);
    const std::size_t from = start == std::string_view::npos ? 0 : start + 1;
    std::string_view raw = output.substr(from, end - from);
    while (!raw.empty() && (raw.back() == '\r' || raw.back() == ' '))
      raw.remove_suffix(1);
    if (raw.starts_with("--- run ")) {
      if (!lines.empty()) {
        lines.insert(lines.begin(), std::string(raw));
        break;
      }
    } else if (!raw.empty() && lines.size() < count) {
      if (stack_frame(raw)) {
        ++frames;
      } else {
        lines.insert(lines.begin(), terminal_safe(raw));
      }
    }
    if (start == std::string_view::npos) break;
    end = start;
  }
  if (frames > 0 && !lines.empty()) {
    lines.push_back("(" + std::to_string(frames) + " stack-trace line" + (frames > 1 ? "s" : "") +
                    " not shown)");
  }
  return lines;
}

// Of a command run several times, the output of the run the reason names ("run 2 (QUIT never
// answered) ..."), up to the start of the next: the run to look at, not whichever came last.
// All of it otherwise, whose last lines are the last run's.
std::string_view output_to_show(const scenario_result& r) {
  const std::string_view all = r.command_output;
  if (r.exit_codes.size() < 2) return all;
  const std::string_view reason = r.reason;
  for (auto at = reason.find("run "); at != std::string_view::npos;
       at = reason.find("run ", at + 1)) {
    if (at > 0 && std::isalnum(static_cast<unsigned char>(reason[at - 1]))) continue;  // "rerun"
    std::size_t n = 0;
    const auto [end, ec] =
        std::from_chars(reason.data() + at + 4, reason.data() + reason.size(), n);
    if (ec != std::errc{} || n < 1 || n > r.exit_codes.size()) continue;
    const auto next = all.find("--- run " + std::to_string(n + 1) + "\n");
    return next == std::string_view::npos ? all : all.substr(0, next);
  }
  return all;
}

// A command that exits 0 where it failed and delivered nothing tells its caller a lost message
// was sent (a mailer that prints the error and exits 0): said once, with where it did.
std::optional<std::string> silent_failures(const std::vector<scenario_result>& results) {
  std::string names;
  int count = 0;
  for (const auto& r : results) {
    const bool all_zero =
        !r.exit_codes.empty() &&
        std::all_of(r.exit_codes.begin(), r.exit_codes.end(), [](int code) { return code == 0; });
    if (r.outcome != verdict::fail || !all_zero || r.delivered != 0) continue;
    names += (names.empty() ? "" : ", ") + r.name;
    ++count;
  }
  if (count < 3) return std::nullopt;
  return "the command exited 0 in " + std::to_string(count) +
         " failed scenarios where nothing was delivered (" + names +
         "): it reports success whatever happens, so whatever runs it cannot tell a lost message "
         "from a sent one";
}

}  // namespace

// A missing QUIT across many scenarios is one habit of the mailer's library (nodemailer's
// transport does not send it), said once, with the way to set it aside. Only quit: the other checks
// a run may waive are each the point of one scenario, and a hint to waive one would only hide it.
std::vector<std::string> run_notes(const std::vector<scenario_result>& results) {
  constexpr int many = 3;
  std::vector<std::string> notes;
  int failed = 0;           // the quit check, where it decided the verdict
  int stopped = 0;          // the mailer's TLS stopped it at the handshake
  std::string unexercised;  // failed for want of what they test ("not exercised: ...")
  int unexercised_count = 0;
  for (const auto& r : results) {
    if (const auto* c = leading_check(r); c && c->detail.starts_with("not exercised")) {
      unexercised += (unexercised.empty() ? "" : ", ") + r.name;
      ++unexercised_count;
    }
    const auto it = std::find_if(r.checks.begin(), r.checks.end(),
                                 [](const auto& c) { return c.name == "quit"; });
    // A close right after the handshake is how the TLS note below counts it, not a habit.
    failed += r.outcome == verdict::fail && it != r.checks.end() && !it->passed && !it->waived &&
              r.kind != tls_stopped_kind;
    stopped += r.kind == tls_stopped_kind;
  }
  if (failed >= many) {
    notes.push_back("quit failed in " + std::to_string(failed) +
                    " scenarios: the mailer closes without QUIT (RFC 5321 4.1.1.10); where its "
                    "library cannot be changed, --waive quit sets that aside in every scenario");
  }
  // The mailer's TLS stopped it at the handshake before the scenario could test anything: the
  // first thing to mend.
  if (stopped >= many) {
    notes.push_back("the mailer's TLS stopped it at the handshake in " + std::to_string(stopped) +
                    " scenarios, before they could test anything (each reason says how): mend "
                    "that first");
  }
  if (auto silent = silent_failures(results)) notes.push_back(std::move(*silent));
  // A first run's FAILs that found no fault: the mailer sends one message to one recipient, and
  // these scenarios need more to test anything.
  if (unexercised_count >= 2) {
    notes.push_back(std::to_string(unexercised_count) + " scenarios failed as not exercised (" +
                    unexercised +
                    "): the mailer never did what they test (each reason says what they need, "
                    "such as a message to two or three recipients); that is no fault found, nor "
                    "a test passed: give them a command that does it, or --exclude them");
  }
  return notes;
}

void print_table(const std::vector<scenario_result>& results, bool colour, std::uint64_t seed) {
  std::size_t width = 8;
  for (const auto& r : results)
    width = std::max(width, r.name.size());
  std::printf("%-*s  %-7s %s\n", static_cast<int>(width), "SCENARIO", "VERDICT", "REASON");
  int counts[4] = {0, 0, 0, 0};
  bool shown_output = false;
  const scenario_result* tls_stop_said = nullptr;  // the first row with the cause in full
  for (const auto& r : results) {
    ++counts[static_cast<int>(r.outcome)];
    const char* on = colour ? colour_of(r.outcome) : "";
    const char* off = colour ? "\033[0m" : "";
    // A mailer not given the test CA stops at the handshake in most scenarios alike: the cause
    // and its advice (some 400 characters) once, and "as under" that row after.
    std::string reason = r.reason;
    if (!r.tls_stop_cause.empty()) {
      if (tls_stop_said && tls_stop_said->tls_stop_cause == r.tls_stop_cause) {
        if (const auto at = reason.find(r.tls_stop_cause); at != std::string::npos)
          reason.replace(at, r.tls_stop_cause.size(), "as under " + tls_stop_said->name);
      } else {
        tls_stop_said = &r;
      }
    }
    // The name and the reason are escaped already (as the transcript is), so that a NUL does
    // not end the line early and no escape sequence reaches the terminal.
    std::printf("%-*s  %s%-7s%s %s\n", static_cast<int>(width), r.name.c_str(), on,
                verdict_name(r.outcome), off, reason.c_str());
    if (r.outcome == verdict::pass) continue;
    for (const auto& line : last_output_lines(output_to_show(r), 3)) {
      std::printf("%-*s  | %s\n", static_cast<int>(width) + 8, "", line.c_str());
      shown_output = true;
    }
  }
  std::printf("\n%d passed, %d failed, %d errors (seed %llu)\n", counts[0], counts[1], counts[2],
              static_cast<unsigned long long>(seed));
  for (const auto& note : run_notes(results))
    std::printf("%s\n", note.c_str());
  if (shown_output) {
    std::printf(
        "(| the command's last output lines; the rest (up to 1 MiB, then its start and end) "
        "and every check in --json or --junit)\n");
  }
}

std::optional<std::string> write_json(const std::string& path,
                                      const std::vector<scenario_result>& results,
                                      std::optional<std::uint64_t> seed) {
  boost::json::array list;
  for (const auto& r : results) {
    boost::json::array checks;
    for (const auto& c : r.checks) {
      boost::json::object check{{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}};
      if (c.waived) check["waived"] = true;
      checks.push_back(std::move(check));
    }
    boost::json::array codes, signals;
    for (int code : r.exit_codes)
      codes.push_back(code);
    for (int sig : r.exit_signals)
      signals.push_back(sig);
    boost::json::object item{{"scenario", r.name}};
    if (!r.file.empty()) item["file"] = r.file;
    item["verdict"] = verdict_name(r.outcome);
    item["reason"] = r.reason;
    item["seconds"] = r.seconds;
    item["exit_codes"] = std::move(codes);
    item["exit_signals"] = std::move(signals);
    item["checks"] = std::move(checks);
    item["command_output"] = r.command_output;
    item["transcript"] = r.transcript;
    list.push_back(std::move(item));
  }
  boost::json::array notes;
  for (const auto& note : run_notes(results))
    notes.push_back(boost::json::string(note));
  boost::json::object doc{{"seed", nullptr}, {"results", std::move(list)}, {"notes", notes}};
  if (seed) doc["seed"] = *seed;
  return write_report_file(path, json::json_text(doc) + "\n");
}

// What the reports say in their own words may quote the client (its last command), a command's
// output or a file's name: escaped once here as the transcript is, so that the table, the JSON
// and the JUnit reports show the same text and none carries a control or a broken octet.
void escape_for_reports(scenario_result& r) {
  r.name = session::escape_wire(r.name);
  r.reason = session::escape_wire(r.reason);
  for (auto& c : r.checks)
    c.detail = session::escape_wire(c.detail);
}

// A scenario parameter that none of the scenarios run names changed nothing: said once, at
// the end (one given for greylist alone is still read by it, and not named by the others).
void note_unread_params(const std::vector<scenario_result>& results) {
  std::vector<std::string> unread, named;
  bool first = true;
  for (const auto& r : results) {
    if (!r.loaded) continue;
    named.insert(named.end(), r.named_params.begin(), r.named_params.end());
    if (first) {
      unread = r.unread_params;
      first = false;
    } else {
      std::erase_if(unread, [&](const std::string& k) {
        return std::find(r.unread_params.begin(), r.unread_params.end(), k) ==
               r.unread_params.end();
      });
    }
  }
  std::fflush(stdout);  // after the table, also when both go to one pipe
  for (const auto& k : unread) {
    auto hint = proto::did_you_mean(k, named);
    if (hint.empty()) hint = " (misspelt?)";
    std::fprintf(stderr,
                 "smtpfault test: note: scenario parameter '%s' is named by none of the "
                 "scenarios run, so it changed nothing%s\n",
                 k.c_str(), hint.c_str());
  }
}

// 2 for an error (a scenario's, the runner's, a report lost), else 1 for a failure, else 0.
int test_exit_status(const std::vector<scenario_result>& results, bool reports_written) {
  const auto any = [&](verdict v) {
    return std::any_of(results.begin(), results.end(),
                       [v](const auto& r) { return r.outcome == v; });
  };
  if (any(verdict::error) || !reports_written) return 2;
  return any(verdict::fail) ? 1 : 0;
}

}  // namespace smtpfault::app
