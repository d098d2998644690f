// Runtime control: the active scenario, fault rules, and the current verdicts of the
// scenario's expectations.
#include <algorithm>
#include <cmath>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "capture/session_analysis.hpp"
#include "config/settings.hpp"
#include "control/request_reader.hpp"
#include "control/router.hpp"
#include "control/rule_json.hpp"
#include "proto/number_text.hpp"
#include "script/catalogue.hpp"
#include "script/expectations.hpp"
#include "script/scenario.hpp"

namespace smtpfault::control {

namespace json = boost::json;
namespace asio = boost::asio;
using sys_clock = std::chrono::system_clock;

namespace {

json::object params_json(const script::scenario_options& opts) {
  json::object params;
  for (const auto& [k, v] : opts.params)
    params[k] = v;
  return params;
}

json::array names_json(const std::vector<std::string>& names) {
  json::array out;
  for (const auto& n : names)
    out.emplace_back(n);
  return out;
}

json::object scenario_json(const api_context& ctx, const script::scenario* sc) {
  if (!sc) {
    // accept-all draws nothing at random; the run has a seed all the same. It reads no
    // parameter, but shows the configured ones as any scenario does.
    const auto& opts = ctx.accept_all_options;
    return json::object{{"name", "accept-all"},
                        {"seed", opts.seed},
                        {"time_scale", opts.time_scale},
                        {"params", params_json(opts)},
                        // It has no source: it reads none of them.
                        {"unread_params", names_json(script::param_keys(opts.params))},
                        {"hooks", json::array{}}};
  }
  json::array hooks;
  for (unsigned i = 0; i <= static_cast<unsigned>(session::hook::disconnect); ++i) {
    auto h = static_cast<session::hook>(i);
    if (sc->hooks() & session::hook_bit(h)) hooks.emplace_back(session::hook_name(h));
  }
  json::object params = params_json(sc->options());
  json::array unread = names_json(sc->unread_params());
  return json::object{{"name", script::shown_name(sc->name())}, {"seed", sc->options().seed},
                      {"time_scale", sc->options().time_scale}, {"params", std::move(params)},
                      {"unread_params", std::move(unread)},     {"hooks", std::move(hooks)}};
}

struct scenario_request {
  std::optional<std::string> name;
  std::optional<std::string> source;
  script::scenario_options opts;
};

// The API is reached over the network: it may load scenario files, not read any file the server
// can (a syntax error would quote a piece of it back). A control character never belongs in a
// name; a NUL would cut the path short of its ".lua".
bool loadable_over_api(const std::string& name) {
  auto control = [](unsigned char c) { return c < 0x20 || c == 0x7f; };
  if (std::any_of(name.begin(), name.end(), control)) return false;
  return !script::names_a_file(name) || name.ends_with(".lua");
}

// "params": {"window": "5"} takes the place of the configured scenario_params; a number is
// taken as its text, as the environment would give it.
void read_params(const json::object& params, object_reader& r,
                 std::map<std::string, std::string>& out) {
  out.clear();
  for (const auto& [key, v] : params) {
    std::string text;
    if (v.is_string()) {
      text = v.get_string();
    } else if (v.is_int64()) {
      text = std::to_string(v.get_int64());
    } else if (v.is_uint64()) {
      text = std::to_string(v.get_uint64());
    } else if (v.is_double() && std::isfinite(v.get_double())) {
      text = proto::number_text(v.get_double());
    } else if (v.is_double()) {
      r.invalid("params", "'" + std::string(key) + "' is a number too large to write down");
      return;
    } else {
      r.invalid("params", "'" + std::string(key) + "' must be a string or a number");
      return;
    }
    const std::string item = std::string(key) + "=" + text;
    if (auto problem = config::scenario_param_problem(item); !problem.empty()) {
      r.invalid("params", problem);
      return;
    }
    out[std::string(key)] = std::move(text);
  }
}

result<scenario_request> read_scenario_request(const api_context& ctx, const std::string& body) {
  auto o = parse_json_object(body);
  if (!o) return proto::unexpected{o.error()};
  std::optional<api_error> err;
  object_reader r(*o, "", err);
  scenario_request out;
  out.name = r.string("name");
  out.source = r.string("source");
  out.opts = ctx.scenario_defaults;
  auto seed = r.integer("seed", 0, UINT64_MAX);
  out.opts.seed = seed ? *seed : ctx.fixed_seed ? *ctx.fixed_seed : script::random_seed();
  if (auto ts = r.positive("time_scale", 1e6)) out.opts.time_scale = *ts;
  if (const auto* params = r.object("params")) read_params(*params, r, out.opts.params);
  r.finish();
  if (!err && !out.name && !out.source) {
    err = api_error{400, "give name (a built-in scenario or a .lua path) or source (Lua text)",
                    "name"};
  }
  // With source, name only names the text in errors ("mine.lua:3:"). A built-in's name there
  // would read as if that built-in had been loaded.
  if (!err && out.source && out.name && !script::names_a_file(*out.name)) {
    err = api_error{400,
                    "with source, name is the file name errors show and must end in .lua ('" +
                        *out.name + "' reads like a built-in scenario, which source replaces)",
                    "name"};
  }
  if (!err && !out.source && out.name && !loadable_over_api(*out.name)) {
    err = api_error{400, "name must be a built-in scenario or a path ending in .lua", "name"};
  }
  if (err) return proto::unexpected{*err};
  return out;
}

// Sessions and messages since the scenario became active, in the order they started.
script::run_outcome outcome_since(const api_context& ctx) {
  script::run_outcome run;
  auto sessions = ctx.store.sessions();
  std::erase_if(sessions, [&](const auto& s) {
    return s->entries.empty() || s->entries.front().at < ctx.scenario_since;
  });
  std::sort(sessions.begin(), sessions.end(),
            [](const auto& a, const auto& b) { return a->entries[0].at < b->entries[0].at; });
  for (const auto& s : sessions)
    run.sessions.push_back(capture::summarize(*s));
  for (const auto& m : ctx.store.messages()) {
    if (m->msg.received < ctx.scenario_since) continue;
    run.stored.push_back(m);
  }
  run.messages = capture::delivered_of(ctx.store.stored_total() - ctx.stored_before, run.sessions);
  if (auto sc = ctx.server.current_scenario()) run.time_scale = sc->options().time_scale;
  return run;
}

}  // namespace

asio::awaitable<response> get_scenario(api_context& ctx, api_request&) {
  auto sc = ctx.server.current_scenario();
  co_return json_response(200, scenario_json(ctx, sc.get()));
}

namespace {

// The field a scenario that failed to load blames: params when the script refused one of them
// (smtp.param_number's "params.window must be a number"), else what named the script.
std::string load_failure_field(const scenario_request& r, const std::string& error) {
  if (!r.opts.params.empty() && error.find(": params.") != std::string::npos) return "params";
  return r.source ? "source" : "name";
}

}  // namespace

asio::awaitable<response> put_scenario(api_context& ctx, api_request& req) {
  auto r = read_scenario_request(ctx, req.body);
  if (!r) co_return error_response(r.error());
  std::shared_ptr<script::scenario> sc;
  // "" is accept-all, as in serve: no scenario to load.
  if (r->source || (*r->name != "accept-all" && !r->name->empty())) {
    auto loaded = r->source
                      ? script::scenario::load(*r->source, r->name.value_or("api.lua"), r->opts)
                      : script::scenario::load_named(*r->name, r->opts);
    if (!loaded)
      co_return error_response({422, loaded.error(), load_failure_field(*r, loaded.error())});
    sc = std::move(*loaded);
  }
  ctx.server.set_scenario(sc);
  if (!sc) ctx.accept_all_options = r->opts;
  // As at start-up: the seed a run can be replayed with.
  ctx.server.log().info(sc ? "scenario " + script::shown_name(sc->name()) +
                                 " loaded over the API; " + sc->seed_text()
                           : "scenario accept-all loaded over the API; " +
                                 script::seed_text(ctx.accept_all_options.seed));
  ctx.scenario_since = sys_clock::now();
  ctx.stored_before = ctx.store.stored_total();
  co_return json_response(200, scenario_json(ctx, sc.get()));
}

asio::awaitable<response> list_faults(api_context& ctx, api_request&) {
  json::array rules;
  for (const auto& r : ctx.server.rules().list())
    rules.push_back(rule_json(r));
  co_return json_response(200, json::object{{"rules", std::move(rules)}});
}

asio::awaitable<response> add_fault(api_context& ctx, api_request& req) {
  auto o = parse_json_object(req.body);
  if (!o) co_return error_response(o.error());
  auto rule = parse_rule(*o);
  if (!rule) co_return error_response(rule.error());
  // Over SMTP the message has one reply: such a rule would fire, be used up, and change nothing.
  if (!rule->action.each_recipient.empty() && !ctx.server.lmtp()) {
    co_return error_response({400,
                              "action.each_recipient: one reply per recipient is LMTP's (serve "
                              "--lmtp); over SMTP the message has one reply: use reply",
                              "action.each_recipient"});
  }
  rule->id = ctx.server.add_rule(*rule);
  co_return json_response(201, rule_json(*rule));
}

asio::awaitable<response> delete_faults(api_context& ctx, api_request&) {
  auto n = ctx.server.rules().list().size();
  ctx.server.rules().clear();
  co_return json_response(200, json::object{{"deleted", n}});
}

// One rule, with how often it fired so far: a test asserts on it without listing them all.
asio::awaitable<response> get_fault(api_context& ctx, api_request& req) {
  for (const auto& r : ctx.server.rules().list())
    if (r.id == req.params.at(0)) co_return json_response(200, rule_json(r));
  co_return error_response(
      {404, "no rule with id '" + req.params[0] + "' (fired out, or deleted)", "id"});
}

asio::awaitable<response> delete_fault(api_context& ctx, api_request& req) {
  if (!ctx.server.rules().remove(req.params.at(0))) {
    co_return error_response(
        {404, "no rule with id '" + req.params[0] + "' (fired out, or deleted)", "id"});
  }
  co_return json_response(200, json::object{{"deleted", 1}});
}

asio::awaitable<response> get_expectations(api_context& ctx, api_request&) {
  auto sc = ctx.server.current_scenario();
  json::object out = scenario_json(ctx, sc.get());
  auto run = outcome_since(ctx);
  out["since"] = session::format_timestamp(ctx.scenario_since);
  out["sessions"] = run.sessions.size();
  out["messages"] = run.messages;
  // Retention (retain.sessions) bounds memory; verdicts over what is left may be wrong, so say
  // that they are judged on part of the run.
  const bool complete = !ctx.store.forgot_a_session_started_since(ctx.scenario_since);
  out["complete"] = complete;
  if (!complete) {
    out["note"] =
        "sessions of this run were forgotten to retain.sessions: the checks judge only the " +
        std::to_string(run.sessions.size()) +
        " kept (raise retain.sessions, or DELETE /api/v1/sessions between test cases)";
  }
  std::vector<script::check_result> checks;
  // A hook that failed while the client ran is the scenario's mistake (smtpfault test says
  // ERROR): the first one leads the list, so that it is not taken for the client's failure.
  if (auto failed = script::failed_hooks(run)) checks.push_back({"scenario", false, *failed, true});
  if (!sc) {
    // No scenario is accept-all: judged by the built-in's expectations, as `smtpfault test`
    // judges it. Loaded only here; sessions keep running without a Lua state.
    auto loaded = script::scenario::load_named("accept-all", ctx.scenario_defaults);
    if (loaded) sc = std::move(*loaded);
  }
  if (sc) {
    // No command runs here, so there is no exit status to judge: said, not silently dropped. A
    // scenario without expect expects exit = "success" (as under smtpfault test), and a client
    // that came at all, which evaluate() judges whatever is expected.
    script::expectations e = sc->expected();
    if (e.empty() || !e.exit.empty()) out["not_judged"] = json::array{"exit"};
    e.exit.clear();
    for (auto& c : script::evaluate(e, run))
      checks.push_back(std::move(c));
    for (auto& c : sc->run_checks(run))
      checks.push_back(std::move(c));
  }
  json::array items;
  bool passed = true;
  for (const auto& c : checks) {
    passed = passed && c.passed;
    json::object item{{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}};
    // A custom check that could not run says nothing of the client: the scenario's mistake,
    // which smtpfault test reports as ERROR.
    if (c.script_error) item["error"] = true;
    items.push_back(std::move(item));
  }
  out["passed"] = passed;
  out["checks"] = std::move(items);
  co_return json_response(200, out);
}

}  // namespace smtpfault::control
