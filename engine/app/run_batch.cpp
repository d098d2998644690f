#include "app/run_batch.hpp"

#include <fnmatch.h>
#include <glob.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <boost/json.hpp>

#include "app/log_lines.hpp"
#include "proto/reply_stream.hpp"
#include "script/catalogue.hpp"

namespace smtpfault::app {

namespace {

bool is_glob(const std::string& name) {
  return name.find_first_of("*?[") != std::string::npos;
}

// A glob of paths ('checks/*.lua'): the regular files it matches, in name order. The shell
// expands an unquoted one itself; a quoted one (a CI file's) comes here.
proto::expected<std::vector<std::string>, std::string> files_matching(const std::string& pattern) {
  glob_t found{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &found);
  std::vector<std::string> files;
  for (std::size_t i = 0; rc == 0 && i < found.gl_pathc; ++i) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(found.gl_pathv[i], ec))
      files.emplace_back(found.gl_pathv[i]);
  }
  ::globfree(&found);
  if (files.empty()) return proto::unexpected("no file matches '" + pattern + "'");
  return files;
}

// A glob of names ('probe-*'): the built-in probes it matches, in name order.
proto::expected<std::vector<std::string>, std::string> probes_matching(const std::string& pattern) {
  std::vector<std::string> probes;
  std::string all;
  for (const auto& probe : script::builtin_client_scenarios()) {
    all += (all.empty() ? "" : ", ") + probe.name;
    if (fnmatch(pattern.c_str(), probe.name.c_str(), 0) == 0) probes.push_back(probe.name);
  }
  if (probes.empty()) {
    return proto::unexpected("no built-in probe matches '" + pattern + "' (they are " + all +
                             "; a glob with a '/' or ending in .lua matches files: './" + pattern +
                             "')");
  }
  return probes;
}

}  // namespace

proto::expected<named_scripts, std::string> scripts_named(const std::vector<std::string>& args) {
  named_scripts out;
  out.batch = args.size() > 1;
  for (const auto& name : args) {
    std::error_code ec;
    proto::expected<std::vector<std::string>, std::string> found = std::vector<std::string>{};
    if (std::filesystem::is_directory(name, ec)) {
      found = script::lua_files_in(name);
      if (!found) return proto::unexpected(name + ": " + found.error());
    } else if (!is_glob(name) ||
               (script::names_a_file(name) && std::filesystem::exists(name, ec))) {
      out.names.push_back(name);  // a script, or a file whose name has a '*' in it
      continue;
    } else {
      found = script::names_a_file(name) ? files_matching(name) : probes_matching(name);
      if (!found) return proto::unexpected(found.error());
    }
    out.batch = true;
    out.names.insert(out.names.end(), found->begin(), found->end());
  }
  return out;
}

std::vector<std::string> drop_repeats(std::vector<std::string>& names) {
  std::set<std::string> seen;
  std::vector<std::string> repeated;
  for (auto it = names.begin(); it != names.end();) {
    std::error_code ec;
    // A file by where it is (checks/a.lua and ./checks/a.lua are one); a probe by its name.
    const auto key =
        script::names_a_file(*it) ? std::filesystem::weakly_canonical(*it, ec).string() : *it;
    if (seen.insert(key).second) {
      ++it;
    } else {
      repeated.push_back(*it);
      it = names.erase(it);
    }
  }
  return repeated;
}

const char* batch_verdict(const std::vector<script_outcome>& runs) {
  auto any = [&](const char* v) {
    return std::any_of(runs.begin(), runs.end(), [&](const auto& o) { return o.verdict == v; });
  };
  if (any("error")) return "error";
  if (any("fail")) return "fail";
  return any("pass") ? "pass" : "skipped";
}

int batch_exit_status(const std::vector<script_outcome>& runs) {
  for (const auto& o : runs)
    if (o.interrupted) return o.exit_status;
  for (int status : {exit_script, exit_target, exit_fail}) {
    for (const auto& o : runs)
      if (o.exit_status == status) return status;
  }
  return exit_pass;
}

// A line each, so that a long transcript need not be scrolled back through to find which one
// failed.
void print_batch_summary(const std::vector<script_outcome>& runs,
                         const std::vector<std::string>& unrun, const run_context& ctx,
                         bool json_lines, int status) {
  const auto named = runs.size() + unrun.size();
  int counts[4] = {0, 0, 0, 0};  // pass, fail, error, skipped
  for (const auto& o : runs) {
    ++counts[o.verdict == "pass" ? 0 : o.verdict == "fail" ? 1 : o.verdict == "error" ? 2 : 3];
  }
  const auto not_run = static_cast<int>(unrun.size());
  if (json_lines) {
    print_json_line({{"scripts", named},
                     {"passed", counts[0]},
                     {"failed", counts[1]},
                     {"errors", counts[2]},
                     {"skipped", counts[3]},
                     {"not_run", not_run},
                     {"verdict", batch_verdict(runs)},
                     {"exit_code", status}});
    return;
  }
  std::size_t width = 6;
  for (const auto& o : runs)
    width = std::max(width, o.name.size());
  const char* scripts = named == 1 ? "script" : "scripts";
  std::printf("\nsmtpfault run: %zu %s against %s (seed %llu)\n", named, scripts,
              ctx.target.c_str(), static_cast<unsigned long long>(ctx.seed));
  for (const auto& o : runs) {
    const std::string verdict = o.verdict == "fail" ? "FAIL" : o.verdict;
    std::string detail = std::to_string(o.passed) + " passed, " + std::to_string(o.failed) +
                         " failed" +
                         (o.skipped ? ", " + std::to_string(o.skipped) + " skipped" : "");
    if (!o.error.empty()) detail += " (" + proto::printable(o.error, 200) + ")";
    std::printf("  %-7s %-*s  %s\n", verdict.c_str(), static_cast<int>(width), o.name.c_str(),
                detail.c_str());
  }
  for (const auto& name : unrun)
    std::printf("  %-7s %s\n", "not run", script::shown_name(name).c_str());
  std::printf("%s: of %zu %s, %d passed, %d failed, %d errors, %d skipped%s\n", batch_verdict(runs),
              named, scripts, counts[0], counts[1], counts[2], counts[3],
              not_run ? (", " + std::to_string(not_run) + " not run").c_str() : "");
}

std::vector<junit_suite> batch_junit(const std::vector<script_outcome>& runs,
                                     const std::vector<std::string>& not_run) {
  // Two scripts of one file name (checks/smoke.lua, more/smoke.lua) would be one suite and one
  // class to a CI view that merges by name: those are named by their paths.
  std::map<std::string, std::set<std::string>> scripts_of_suite;
  for (const auto& o : runs)
    scripts_of_suite[o.junit.suite].insert(o.name);
  std::vector<junit_suite> suites;
  for (const auto& o : runs) {
    junit_suite s{o.junit, o.junit_cases};
    if (scripts_of_suite[o.junit.suite].size() > 1) s.names = junit_names_of_path(o.name);
    suites.push_back(std::move(s));
  }
  for (const auto& name : not_run) {
    scenario_result c;
    c.name = script::shown_name(name);
    c.outcome = verdict::skip;
    c.reason = "not run: the run was interrupted before it";
    suites.push_back({junit_names_of(name), {std::move(c)}});
  }
  return suites;
}

boost::json::object batch_json(const std::vector<script_outcome>& runs,
                               const std::vector<std::string>& not_run, const run_context& ctx,
                               int status) {
  boost::json::array reports, unrun;
  for (const auto& o : runs)
    reports.push_back(o.json);
  for (const auto& name : not_run)
    unrun.push_back(boost::json::string(name));
  return {{"target", ctx.target},           {"seed", ctx.seed},
          {"verdict", batch_verdict(runs)}, {"exit_code", status},
          {"scripts", std::move(reports)},  {"not_run", std::move(unrun)}};
}

}  // namespace smtpfault::app
