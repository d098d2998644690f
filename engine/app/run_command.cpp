// `smtpfault run`: client scenarios against any SMTP server, with a verdict per expectation.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include "app/cli_args.hpp"
#include "app/command_flags.hpp"
#include "app/commands.hpp"
#include "app/log_lines.hpp"
#include "app/run_batch.hpp"
#include "app/run_outcome.hpp"
#include "app/test_report.hpp"
#include "app/version.hpp"
#include "config/loader.hpp"
#include "json/json_text.hpp"
#include "net/script_client.hpp"
#include "proto/duration.hpp"
#include "proto/near_miss.hpp"
#include "proto/reply_stream.hpp"
#include "script/catalogue.hpp"
#include "script/scenario.hpp"
#include "script/source_scan.hpp"

namespace smtpfault::app {

namespace {

namespace asio = boost::asio;

void print_run_help() {
  std::printf(
      "usage: smtpfault run SCRIPT... [options]\n"
      "\n"
      "Runs client scenarios against an SMTP server, one after another, and prints each\n"
      "connection's transcript and a verdict per expectation. A SCRIPT is a .lua path, a\n"
      "built-in probe such as probe-smuggling, a glob of probes ('probe-*') or a folder (its\n"
      ".lua files in name order); several end with a line per script.\n"
      "Exit 0 when every expectation held (or the script skipped: nothing to probe), 1 when\n"
      "one failed, 2 for a script or usage error (file:line: message), 3 when the target\n"
      "could not be reached, STARTTLS was refused or a TLS handshake the script needed failed\n"
      "(of several scripts: 2 before 3 before 1); 130 or 143 when SIGINT or SIGTERM stopped\n"
      "it (the reports are still written, with what happened until then).\n"
      "\n"
      "  --target HOST:PORT      the server for connect{} (default 127.0.0.1:2525)\n"
      "  --tls-target HOST:PORT  the implicit-TLS port for connect{tls=true}\n"
      "  --timeout SECONDS       default deadline of every wait: connect, reply, write,\n"
      "                          handshake (default 30)\n"
      "  --param KEY=VALUE       a value for the script's params table, repeatable\n"
      "  --seed N                seed of math.random (default: from the clock; printed)\n"
      "  --junit FILE            JUnit XML: one test case per expectation (a suite per\n"
      "                          script)\n"
      "  --json FILE             JSON: verdicts, report values and transcripts (of several\n"
      "                          scripts: each script's report in \"scripts\")\n"
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

// A report that cannot be written is found before the run, not after it (where its exit 2 would
// also hide the run's own status).
std::optional<std::string> unwritable_reports(const run_settings& rs) {
  for (const auto& [flag, path] : {std::pair{"--junit", rs.junit}, std::pair{"--json", rs.json}}) {
    if (path.empty()) continue;
    if (auto err = unwritable_report(path)) return std::string(flag) + " " + path + ": " + *err;
  }
  return one_file_for_both_reports(rs.junit, rs.json);
}

// One report for the whole run: one script's as `run` of that script alone writes it; a batch's
// (several names, a folder, a glob) as a JUnit suite per script and one JSON document with each
// script's report in "scripts".
int write_run_reports(const std::vector<script_outcome>& runs, const named_scripts& named,
                      const std::vector<std::string>& not_run, const run_settings& rs,
                      const run_context& ctx, int status) {
  std::optional<std::string> err;
  if (!rs.junit.empty()) err = write_junit_suites(rs.junit, batch_junit(runs, not_run), ctx.seed);
  if (!err && !rs.json.empty()) {
    const auto doc = named.batch ? batch_json(runs, not_run, ctx, status) : runs.front().json;
    err = write_report_file(rs.json, json::json_text(doc) + "\n");
  }
  if (err) std::fprintf(stderr, "smtpfault run: %s\n", err->c_str());
  return err ? exit_script : status;
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

// A script's source, found before the first script runs: a mistyped name is said at once, not
// after the scripts before it.
using found_source = proto::expected<script::scenario_source, std::string>;

// One script, start to end: its header, live transcript and summary on stdout.
// A script that did not load, in JSON lines: its "run" line and its "verdict", as a script that
// ran has them, so that a log reader sees which one it was.
void print_load_error_json(const std::string& name, const std::string& error,
                           const run_context& ctx) {
  print_json_line({{"run", script::shown_name(name)}, {"target", ctx.target}, {"seed", ctx.seed}});
  print_json_line({{"verdict", "error"},
                   {"passed", 0},
                   {"failed", 0},
                   {"skipped", 0},
                   {"seconds", 0},
                   {"seed", ctx.seed},
                   {"error", error}});
}

// A --param that neither a script given nor the client library names changes nothing: a
// misspelt key (enfrce=true) would pass unseen.
void note_unread_params(const std::map<std::string, std::string>& params,
                        const std::vector<found_source>& sources) {
  auto unread = script::param_keys(params);
  std::vector<std::string> named;
  const auto read_by = [&](std::string_view code) {
    unread = script::params_never_named(code, unread);
    const auto maybe = script::params_maybe_named(code);
    named.insert(named.end(), maybe.begin(), maybe.end());
  };
  for (const auto& file : script::client_library())
    read_by(file.code);
  for (const auto& source : sources)
    if (source) read_by(source->code);
  for (const auto& key : unread) {
    std::fprintf(stderr,
                 "smtpfault run: note: --param %s is named by no script given, so it changes "
                 "nothing%s\n",
                 key.c_str(), proto::did_you_mean(key, named).c_str());
  }
}

script_outcome run_script(const std::string& name, const found_source& source,
                          const run_settings& rs, const run_context& ctx) {
  const bool json_lines = rs.format == output_format::json;
  if (!source) {  // said on stderr already, before the first script
    if (json_lines) print_load_error_json(name, source.error(), ctx);
    return load_error_outcome(name, source.error(), ctx);
  }
  auto opts = rs.opts;
  opts.module_folder = source->folder;
  auto script = script::client_script::load(source->code, source->chunkname, opts);
  if (!script) {
    std::fprintf(stderr, "smtpfault run: %s\n", script.error().c_str());
    if (json_lines) print_load_error_json(source->chunkname, script.error(), ctx);
    return load_error_outcome(source->chunkname, script.error(), ctx);
  }
  auto& s = **script;
  if (json_lines) {
    print_json_line(
        {{"run", script::shown_name(s.name())}, {"target", ctx.target}, {"seed", ctx.seed}});
  } else {
    std::printf("smtpfault run: %s against %s (seed %llu)\n", script::shown_name(s.name()).c_str(),
                ctx.target.c_str(), static_cast<unsigned long long>(ctx.seed));
  }
  auto result = net::run_client_script(s, [&](int conn, std::string_view line) {
    if (rs.quiet || rs.format == output_format::none) return;
    if (json_lines) return print_json_line(transcript_fields(line, conn));
    std::printf("[%d] %.*s\n", conn, static_cast<int>(line.size()), line.data());
  });
  if (json_lines) {
    print_summary_json(result, s);
  } else {
    print_summary(result, s);
  }
  return outcome_of(result, s, ctx);
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
  if (args.positional.empty()) return usage_error("name a client scenario (or several)");
  auto named = scripts_named(args.positional);
  if (!named) return usage_error(named.error());
  for (const auto& repeated : drop_repeats(named->names))
    std::fprintf(stderr, "smtpfault run: %s is given more than once: it runs once\n",
                 repeated.c_str());
  if (auto err = unwritable_reports(rs)) return usage_error(*err);
  const auto& scripts = named->names;
  std::vector<found_source> sources;
  for (const auto& name : scripts) {
    sources.push_back(script::find_client_scenario_source(name));
    if (!sources.back()) {
      std::fprintf(stderr, "smtpfault run: %s%s\n", sources.back().error().c_str(),
                   scripts.size() > 1 ? " (the other scripts run)" : "");
    }
  }
  note_unread_params(rs.opts.params, sources);
  const run_context ctx{rs.target_text(), rs.opts.seed};
  // A SIGINT or SIGTERM between two scripts stops the run as one during a script does: with the
  // reports of what ran (a signal during a script reaches that script's own handler too).
  asio::io_context signal_ctx;
  asio::signal_set signals(signal_ctx, SIGINT, SIGTERM);
  int caught = 0;
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (!ec) caught = signal;
  });
  std::vector<script_outcome> runs;
  for (std::size_t i = 0; i < scripts.size(); ++i) {
    if (!runs.empty() && rs.format != output_format::json) std::printf("\n");
    runs.push_back(run_script(scripts[i], sources[i], rs, ctx));
    signal_ctx.poll();
    if (runs.back().interrupted || caught != 0) break;
  }
  int status = batch_exit_status(runs);
  if (caught != 0 && !runs.back().interrupted) {
    status = 128 + caught;
    std::fprintf(stderr, "smtpfault run: interrupted by %s after %s\n",
                 caught == SIGINT ? "SIGINT" : "SIGTERM", runs.back().name.c_str());
  }
  std::vector<std::string> not_run;
  for (auto i = runs.size(); i < scripts.size(); ++i)
    not_run.push_back(sources[i] ? sources[i]->chunkname : scripts[i]);
  if (named->batch) {
    print_batch_summary(runs, not_run, ctx, rs.format == output_format::json, status);
  }
  return write_run_reports(runs, *named, not_run, rs, ctx, status);
}

}  // namespace smtpfault::app
