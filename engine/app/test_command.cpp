// `smtpfault test [--scenario S]... [--scenarios DIR] [--junit F] [--json F] [--timeout SEC]
//                 [--seed N] [--time-scale F] [--jobs N] -- CMD [ARGS]`
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "app/child_process.hpp"
#include "app/cli_args.hpp"
#include "app/command_flags.hpp"
#include "app/commands.hpp"
#include "app/server_setup.hpp"
#include "app/shared_input.hpp"
#include "app/test_arguments.hpp"
#include "app/test_report.hpp"
#include "app/test_runner.hpp"
#include "app/version.hpp"
#include "net/tls_context.hpp"
#include "proto/expected.hpp"
#include "proto/near_miss.hpp"
#include "script/catalogue.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

namespace {

// What the table and the reports call each scenario: a file by its name without ".lua", as a
// built-in is called, so that test names in CI do not depend on where the checkout lives. Files
// that would share a name (one in each of two folders, or a built-in's) keep their paths.
std::vector<std::string> shown_names(const std::vector<std::string>& scenarios) {
  std::vector<std::string> shown;
  std::map<std::string, int> uses;
  for (const auto& s : scenarios) {
    shown.push_back(script::names_a_file(s) ? std::filesystem::path(s).stem().string() : s);
    ++uses[shown.back()];
  }
  for (std::size_t i = 0; i < shown.size(); ++i)
    if (uses[shown[i]] > 1) shown[i] = scenarios[i];
  return shown;
}

std::vector<scenario_result> run_all(const parsed_test& p, net::tls_contexts& tls) {
  std::vector<scenario_result> results(p.scenarios.size());
  const auto names = shown_names(p.scenarios);
  std::atomic<std::size_t> next{0};
  std::mutex print_mu;
  auto worker = [&] {
    for (std::size_t i; (i = next++) < p.scenarios.size();) {
      const bool run = !interrupting_signal();
      if (run) results[i] = run_scenario(p.scenarios[i], p.opts, tls);
      results[i].name = names[i];
      if (script::names_a_file(p.scenarios[i])) results[i].file = p.scenarios[i];
      if (!run) results[i].reason = "not run: " + interruption();
      escape_for_reports(results[i]);
      if (!run) continue;
      std::lock_guard lock(print_mu);
      std::fprintf(stderr, "%-5s %s (%.1f s)\n", verdict_name(results[i].outcome),
                   results[i].name.c_str(), results[i].seconds);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned j = 1; j < std::min<std::size_t>(p.jobs, p.scenarios.size()); ++j) {
    threads.emplace_back(worker);
  }
  worker();
  for (auto& t : threads)
    t.join();
  return results;
}

}  // namespace

// Whether --exclude's pattern names the scenario: its name or path, or its file name with or
// without ".lua" (a built-in's name as if it were a file), as written or as a glob.
bool excluded_by(const std::string& pattern, const std::string& scenario) {
  const std::string stem = std::filesystem::path(scenario).stem().string();
  const std::string file = stem + ".lua";  // a built-in's too
  for (const auto* name : {&scenario, &file, &stem}) {
    if (fnmatch(pattern.c_str(), name->c_str(), 0) == 0) return true;
  }
  // The same file spelled another way ("./x.lua", an absolute path).
  std::error_code ec;
  return std::filesystem::equivalent(pattern, scenario, ec) && !ec;
}

namespace {

// The same scenario given twice (a name twice, a built-in's name and its file, a folder and one
// of its files) runs once: same file name, same text. Two different texts keep both rows, and
// so do two files of one text that require modules from different folders. Returns what was
// dropped, each with the name that stays.
std::vector<std::pair<std::string, std::string>> drop_repeats(std::vector<std::string>& scenarios) {
  std::map<std::tuple<std::string, std::string, std::string>, std::string> seen;
  std::vector<std::pair<std::string, std::string>> repeated;
  for (auto it = scenarios.begin(); it != scenarios.end();) {
    auto source = script::find_scenario_source(*it);
    std::string folder;
    if (source && source->code.find("require") != std::string::npos) {
      std::error_code ec;
      folder = std::filesystem::weakly_canonical(source->folder, ec).string();
    }
    std::tuple key{std::filesystem::path(*it).stem().string(), source ? source->code : *it,
                   std::move(folder)};
    if (auto [at, added] = seen.try_emplace(std::move(key), *it); added) {
      ++it;
    } else {
      repeated.emplace_back(*it, at->second);
      it = scenarios.erase(it);
    }
  }
  return repeated;
}

}  // namespace

// Drops the excluded scenarios; an --exclude on the command line that names none is a mistake
// (a typo would otherwise run what it meant to leave out). One from the configuration is shared
// by runs that choose other scenarios: it may name none of them.
std::optional<std::string> apply_excludes(parsed_test& p, std::vector<std::string>& left_out) {
  for (const auto& [pattern, origin] : p.excluded) {
    const bool typed = origin.starts_with("--");
    const auto matches = [&](const std::string& s) { return excluded_by(pattern, s); };
    if (typed && std::none_of(p.scenarios.begin(), p.scenarios.end(), matches) &&
        std::none_of(left_out.begin(), left_out.end(), matches)) {
      std::vector<std::string> names;
      for (const auto& s : p.scenarios)
        names.push_back(std::filesystem::path(s).stem().string());
      const std::string hint = pattern.find(',') != std::string::npos
                                   ? " (one name or glob per --exclude)"
                                   : proto::did_you_mean(pattern, names);
      return "--exclude " + pattern + ": matches none of the scenarios to run" + hint;
    }
    for (auto it = p.scenarios.begin(); it != p.scenarios.end();) {
      if (matches(*it)) {
        left_out.push_back(*it);
        it = p.scenarios.erase(it);
      } else {
        ++it;
      }
    }
  }
  return std::nullopt;
}

namespace {

// Where the exclusions were given, each source once: "--exclude", "mail.toml:3:12: key
// 'test.exclude'" (a file's first item), the variable.
std::string exclusions_named(const std::vector<std::pair<std::string, std::string>>& excluded) {
  std::string named;
  bool flag = false, file = false, variable = false;
  for (const auto& [pattern, origin] : excluded) {
    bool& said = origin.starts_with("--")                      ? flag
                 : origin.find(": key '") != std::string::npos ? file
                                                               : variable;
    if (std::exchange(said, true)) continue;
    named += (named.empty() ? "" : " and ") +
             (origin.starts_with("--") ? std::string("--exclude") : origin);
  }
  return named;
}

// The scenarios to run: every built-in one when none is named, each once, less --exclude's.
// Nullopt, or what is wrong.
std::optional<std::string> choose_scenarios(parsed_test& p, std::vector<std::string>& left_out) {
  if (p.scenarios.empty()) {
    for (const auto& b : script::builtin_scenarios())
      p.scenarios.push_back(b.name);
  }
  for (const auto& [dropped, kept] : drop_repeats(p.scenarios)) {
    if (dropped == kept) {
      std::fprintf(stderr, "smtpfault test: %s is given more than once: it runs once\n",
                   dropped.c_str());
    } else {
      std::fprintf(stderr,
                   "smtpfault test: %s is the same scenario as %s (same name and text): it runs "
                   "once, as %s\n",
                   dropped.c_str(), kept.c_str(), kept.c_str());
    }
  }
  if (auto exclude_err = apply_excludes(p, left_out)) {
    return *exclude_err + " (see smtpfault test --help)";
  }
  if (p.scenarios.empty()) return exclusions_named(p.excluded) + " left no scenario to run";
  return std::nullopt;
}

// The certificates every scenario's server presents, or why they cannot be made.
proto::expected<std::unique_ptr<net::tls_contexts>, std::string> make_certificates(
    const config::settings& s) {
  try {
    auto made = net::tls_contexts::make(
        {s.tls_cert, s.tls_key, s.hostname, s.tls_names, s.tls_min_version});
    if (made) return std::move(*made);
    return proto::unexpected{s.named(made.error().key) + ": " + made.error().message};
  } catch (const std::exception& e) {
    return proto::unexpected{std::string(e.what())};
  }
}

// Said before anything runs, so that a run that is killed or hangs still says which seed it had.
void announce(const parsed_test& p, const std::vector<std::string>& left_out) {
  std::string excluded_text;
  for (const auto& s : left_out)
    excluded_text += (excluded_text.empty() ? "" : ", ") + s;
  std::fprintf(stderr, "smtpfault test: %zu scenario(s)%s, seed %llu\n", p.scenarios.size(),
               left_out.empty() ? "" : (" (excluded: " + excluded_text + ")").c_str(),
               static_cast<unsigned long long>(p.opts.seed));
}

// False when a report asked for could not be written: a CI job that reads the report must not
// go green without one.
bool write_test_reports(const parsed_test& p, const std::vector<scenario_result>& results,
                        double seconds, std::optional<std::uint64_t> seed) {
  bool written = true;
  if (!p.junit.empty()) {
    junit_names names;
    names.seconds = seconds;
    if (auto e = write_junit(p.junit, results, seed, names)) {
      std::fprintf(stderr, "smtpfault test: %s\n", e->c_str());
      written = false;
    }
  }
  if (!p.json.empty()) {
    if (auto e = write_json(p.json, results, seed)) {
      std::fprintf(stderr, "smtpfault test: %s\n", e->c_str());
      written = false;
    }
  }
  return written;
}

// A run that stops before any scenario (a mailer that cannot be run, a scenario that is not
// there) still leaves the reports asked for, each with that one error: a file from an earlier
// run must not stand for this one, as a CI job that publishes the report whatever happened
// would show it.
int refuse_run(const parsed_test& p, const std::string& why) {
  std::fprintf(stderr, "smtpfault test: %s\n", why.c_str());
  scenario_result refusal;
  refusal.name = "smtpfault test";
  refusal.outcome = verdict::error;
  refusal.reason = why;
  escape_for_reports(refusal);
  // Refused before a seed was chosen, it has none, unless --seed (or the configuration) gave it.
  write_test_reports(p, {refusal}, 0,
                     p.seed_given ? std::optional<std::uint64_t>(p.opts.seed) : std::nullopt);
  return 2;
}

}  // namespace

// The test CA in a file of its own for the commands (SMTP_CA_FILE), so that a mailer can
// trust it without a checkout of the repository; removed when the run ends.
class ca_file_for_commands {
 public:
  std::optional<std::string> write() {
    std::string path = temp_folder() + "/smtpfault-test-ca-XXXXXX.pem";
    const int fd = mkstemps(path.data(), 4);
    if (fd < 0) return "cannot write the test CA to " + path + ": " + std::strerror(errno);
    ::fchmod(fd, 0644);  // a public certificate: a command run as another user reads it too
    const auto pem = net::test_ca_pem();
    const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
    ::close(fd);
    path_ = path;
    remove_if_interrupted(path_);
    if (!written) {
      remove();
      return "cannot write the test CA to " + path;
    }
    return std::nullopt;
  }
  const std::string& path() const { return path_; }
  ~ca_file_for_commands() { remove(); }
  void remove() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove(path_, ignored);
    remove_if_interrupted("");
    path_.clear();
  }

 private:
  std::string path_;
};

int test_command(const std::vector<std::string>& argv, char** envp) {
  parsed_test p;
  std::string err = parse_test_arguments(argv, envp, p);
  if (err == "help") return print_test_help(), 0;
  if (err == "version") return std::printf("smtpfault %s\n", version), 0;
  if (!err.empty()) {
    // One pointer to read on: an error that ends with its own ("(see smtpfault list)") gets no
    // second.
    const auto own = err.rfind(" (see ");
    if (own == std::string::npos || err.find(')', own) != err.size() - 1)
      err += " (see smtpfault test --help)";
    return refuse_run(p, err);
  }
  // Reports of an earlier run must not outlive this one's start: a run that is killed before
  // it writes its own (a second Ctrl-C, a signal while standard input is read) leaves none.
  for (const auto* report : {&p.junit, &p.json}) {
    std::error_code ignored;
    if (!report->empty()) std::filesystem::remove(*report, ignored);
  }
  if (auto config_err = read_test_settings(p, envp)) return refuse_run(p, *config_err);
  if (auto run_err = unrunnable(p.opts.command.front())) {
    return refuse_run(p, *run_err + "; no scenario was run");
  }
  // Before the interrupt handling: a Ctrl-C while a pipe is read ends the run as usual.
  if (auto input_err = share_standard_input()) return refuse_run(p, *input_err);
  end_commands_on_interrupt();
  std::vector<std::string> left_out;
  if (auto choice_err = choose_scenarios(p, left_out)) return refuse_run(p, *choice_err);
  if (!p.seed_given) p.opts.seed = script::random_seed();
  auto tls = make_certificates(p.opts.server);
  if (!tls) return refuse_run(p, tls.error());
  ca_file_for_commands ca;
  if (p.opts.server.tls_cert.empty()) {
    // Only a command that verifies the server needs it: without it the run goes on.
    if (auto ca_err = ca.write()) {
      std::fprintf(stderr, "smtpfault test: %s; SMTP_CA_FILE is not set\n", ca_err->c_str());
    } else {
      p.opts.ca_file = ca.path();
    }
  }
  announce(p, left_out);
  const auto started = std::chrono::steady_clock::now();
  auto results = run_all(p, **tls);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  print_table(results, isatty(1) != 0, p.opts.seed);
  note_unread_params(results);
  const bool reports_written = write_test_reports(p, results, took.count(), p.opts.seed);
  if (interrupting_signal()) {
    std::fprintf(stderr, "smtpfault test: %s%s\n", interruption().c_str(),
                 p.junit.empty() && p.json.empty() ? "" : "; the reports have what ran");
    die_of_interrupt();
  }
  return test_exit_status(results, reports_written);
}

}  // namespace smtpfault::app
