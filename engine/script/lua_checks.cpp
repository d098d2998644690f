#include "script/lua_checks.hpp"

#include <lua.hpp>

#include <algorithm>
#include <chrono>
#include <string>

#include "script/lua_bridge.hpp"
#include "script/lua_fields.hpp"

namespace smtpfault::script {

namespace {

// Raw reads: these run outside any protected call, where a metamethod's error would abort.
int raw_field(lua_State* L, int t, const char* key) {
  lua_pushstring(L, key);
  return lua_rawget(L, t);
}

std::optional<bool> get_bool(lua_State* L, int t, const char* key) {
  raw_field(L, t, key);
  std::optional<bool> v;
  if (!lua_isnil(L, -1)) v = lua_toboolean(L, -1) != 0;
  lua_pop(L, 1);
  return v;
}

std::optional<double> get_number(lua_State* L, int t, const char* key) {
  raw_field(L, t, key);
  std::optional<double> v;
  if (lua_isnumber(L, -1)) v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

// `delivered = 1` or `delivered = {min = 1, max = 3}`
std::optional<count_range> get_range(lua_State* L, int t, const char* key) {
  raw_field(L, t, key);
  std::optional<count_range> r;
  if (lua_isnumber(L, -1)) {
    auto n = static_cast<std::uint64_t>(lua_tointeger(L, -1));
    r = count_range{n, n};
  } else if (lua_istable(L, -1)) {
    r = count_range{};
    int inner = lua_gettop(L);
    if (auto v = get_number(L, inner, "min")) r->min = static_cast<std::uint64_t>(*v);
    if (auto v = get_number(L, inner, "max")) r->max = static_cast<std::uint64_t>(*v);
  }
  lua_pop(L, 1);
  return r;
}

void read_one(lua_State* L, int t, expectations& e) {
  if (auto v = get_range(L, t, "delivered")) e.delivered = v;
  if (auto v = get_bool(L, t, "quit")) e.quit = v;
  if (auto v = get_bool(L, t, "starttls_before_auth")) e.starttls_before_auth = v;
  if (auto v = get_bool(L, t, "no_plaintext_auth")) e.no_plaintext_auth = v;
  if (auto v = get_bool(L, t, "no_plaintext_after_tls_failure")) {
    e.no_plaintext_after_tls_failure = v;
  }
  if (auto v = get_bool(L, t, "retried_after_4xx")) e.retried_after_4xx = v;
  if (auto v = get_bool(L, t, "no_retry_after_5xx")) e.no_retry_after_5xx = v;
  if (auto v = get_bool(L, t, "dot_stuffing")) e.dot_stuffing = v;
  if (auto v = get_bool(L, t, "line_length")) e.line_length = v;
  if (auto v = get_bool(L, t, "line_endings")) e.line_endings = v;
  if (auto v = get_bool(L, t, "pipelining")) e.pipelining = v;
  raw_field(L, t, "retry_delay");
  if (lua_istable(L, -1)) {
    e.retry_delay_min = get_number(L, lua_gettop(L), "min");
    e.retry_delay_max = get_number(L, lua_gettop(L), "max");
  } else if (lua_isnumber(L, -1)) {
    e.retry_delay_min = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  raw_field(L, t, "exit");
  if (lua_type(L, -1) == LUA_TSTRING || lua_isinteger(L, -1)) {
    e.exit = {lua_tostring(L, -1)};
  } else if (lua_istable(L, -1)) {
    // One per run: expect() has checked each entry and that there are as many as runs.
    e.exit.clear();
    const auto n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      e.exit.emplace_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (auto v = get_number(L, t, "runs")) e.runs = static_cast<unsigned>(*v);
  if (auto v = get_number(L, t, "run_gap")) e.run_gap = *v;
  raw_field(L, t, "check");
  if (lua_isfunction(L, -1)) {
    e.checks.push_back(luaL_ref(L, LUA_REGISTRYINDEX));
  } else {
    lua_pop(L, 1);
  }
}

// Times are seconds of scenario time since the first session started, so that a check reads
// them against the scenario's own windows and delays whatever --time-scale was.
struct scenario_clock {
  std::chrono::system_clock::time_point first;
  double time_scale = 1.0;

  void push(lua_State* L, std::chrono::system_clock::time_point t) const {
    const std::chrono::duration<double> real = t - first;
    lua_pushnumber(L, real.count() / time_scale);
  }
};

void push_exchange(lua_State* L, const capture::exchange& x, const scenario_clock& clock) {
  lua_createtable(L, 0, 6);
  set_string(L, "command", x.command);
  clock.push(L, x.at);
  lua_setfield(L, -2, "at");
  set_string(L, "verb", x.verb);
  set_integer(L, "code", x.code);
  set_string(L, "reply", x.reply);
  set_integer(L, "line", static_cast<lua_Integer>(x.line));
  if (!x.recipient.empty()) {
    set_string(L, "recipient", x.recipient);
  }
}

void push_session(lua_State* L, const capture::session_summary& s, const scenario_clock& clock,
                  std::size_t run_number) {
  lua_createtable(L, 0, 15);
  set_integer(L, "run", static_cast<lua_Integer>(run_number));
  clock.push(L, s.started);
  lua_setfield(L, -2, "started");
  clock.push(L, s.ended);
  lua_setfield(L, -2, "ended");
  set_string(L, "id", s.id);
  set_bool(L, "implicit_tls", s.implicit_tls);
  set_bool(L, "quit", s.quit);
  set_bool(L, "client_closed", s.client_closed);
  set_bool(L, "hung", s.hung);
  set_bool(L, "left_while_held", s.reply_held);
  set_bool(L, "tls", s.implicit_tls || s.tls_at != 0);
  set_bool(L, "pipelined", s.pipelined);
  if (!s.pipelined_after.empty()) set_string(L, "pipelined_after", s.pipelined_after);
  set_bool(L, "early_talker", s.early_talker);
  if (!s.sent_while_held.empty()) {
    set_string(L, "sent_while_held", s.sent_while_held);
    set_integer(L, "sent_while_held_at", static_cast<lua_Integer>(s.sent_while_held_at));
    set_string(L, "sent_while_held_command", s.sent_while_held_command);
  }
  set_integer(L, "delivered", static_cast<lua_Integer>(s.delivered));
  // The kinds the server noted, each once: also for a message it refused, which run.messages
  // does not hold (8-bit octets in one refused for a line too long).
  lua_createtable(L, static_cast<int>(s.anomaly_kinds.size()), 0);
  for (std::size_t j = 0; j < s.anomaly_kinds.size(); ++j) {
    lua_pushstring(L, s.anomaly_kinds[j].c_str());
    lua_rawseti(L, -2, static_cast<lua_Integer>(j + 1));
  }
  lua_setfield(L, -2, "anomalies");
  lua_createtable(L, static_cast<int>(s.exchanges.size()), 0);
  for (std::size_t j = 0; j < s.exchanges.size(); ++j) {
    push_exchange(L, s.exchanges[j], clock);
    lua_rawseti(L, -2, static_cast<lua_Integer>(j + 1));
  }
  lua_setfield(L, -2, "exchanges");
}

void push_stored_message(lua_State* L, const capture::stored_message& stored) {
  const auto& m = stored.msg;
  lua_createtable(L, 0, 8);
  set_string(L, "data", m.data);
  set_string(L, "mail_from", m.env.mail_from.address());
  lua_createtable(L, static_cast<int>(m.env.recipients.size()), 0);
  for (std::size_t j = 0; j < m.env.recipients.size(); ++j) {
    lua_pushstring(L, m.env.recipients[j].address.address().c_str());
    lua_rawseti(L, -2, static_cast<lua_Integer>(j + 1));
  }
  lua_setfield(L, -2, "recipients");
  set_string(L, "session", m.facts.session_id);
  set_bool(L, "tls", m.facts.tls);
  set_bool(L, "acknowledged", stored.acknowledged());
  set_headers_and_subject(L, m.data);
}

void push_run(lua_State* L, const run_outcome& run) {
  const scenario_clock clock{
      run.sessions.empty() ? std::chrono::system_clock::time_point{} : run.sessions.front().started,
      run.time_scale};
  lua_createtable(L, 0, 7);
  lua_createtable(L, static_cast<int>(run.sessions.size()), 0);
  for (std::size_t i = 0; i < run.sessions.size(); ++i) {
    push_session(L, run.sessions[i], clock, run_at(run, run.sessions[i].started));
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "sessions");
  set_integer(L, "delivered", static_cast<lua_Integer>(run.messages));
  lua_createtable(L, static_cast<int>(run.stored.size()), 0);
  for (std::size_t i = 0; i < run.stored.size(); ++i) {
    push_stored_message(L, *run.stored[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "messages");
  lua_createtable(L, static_cast<int>(run.exit_codes.size()), 0);
  for (std::size_t i = 0; i < run.exit_codes.size(); ++i) {
    lua_pushinteger(L, run.exit_codes[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "exit_codes");
  // The signal of a run that crashed, as the runner tells one (also a shell's 139), else 0.
  lua_createtable(L, static_cast<int>(run.exit_codes.size()), 0);
  for (std::size_t i = 0; i < run.exit_codes.size(); ++i) {
    lua_pushinteger(L, i < run.exit_signals.size() ? run.exit_signals[i] : 0);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "exit_signals");
  // Times above are scenario time; a check that speaks of how long a mailer took multiplies back.
  lua_pushnumber(L, run.time_scale);
  lua_setfield(L, -2, "time_scale");
}

}  // namespace

std::optional<std::string> parse_expectations(lua_State* L, expectations& out) {
  // Raw reads: nothing a script defined runs from here, outside any protected call.
  lua_pushglobaltable(L);
  lua_pushstring(L, "smtp");
  const bool api = lua_rawget(L, -2) == LUA_TTABLE;
  lua_pushstring(L, "_expectations");
  if (api) lua_rawget(L, -2);
  if (api && lua_istable(L, -1)) {
    int list = lua_gettop(L);
    for (lua_Integer i = 1, n = static_cast<lua_Integer>(lua_rawlen(L, list)); i <= n; ++i) {
      lua_rawgeti(L, list, i);
      if (lua_istable(L, -1)) read_one(L, lua_gettop(L), out);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 0);
  if (out.runs == 0) return "expect: runs must be at least 1";
  return std::nullopt;
}

namespace {

// "a string ('yes')", "nil", "a number (1)": what came back instead of a boolean.
std::string returned_value(lua_State* co, int index) {
  const int type = lua_type(co, index);
  if (type == LUA_TNIL) return "nil";
  if (type == LUA_TSTRING || type == LUA_TNUMBER) {
    std::size_t n = 0;
    const char* text = lua_tolstring(co, index, &n);
    std::string shown(text, std::min<std::size_t>(n, 80));
    return std::string(type == LUA_TSTRING ? "a string ('" : "a number (") + shown +
           (type == LUA_TSTRING ? "')" : ")");
  }
  return std::string("a ") + lua_typename(co, type);
}

}  // namespace

std::vector<check_result> run_custom_checks(lua_sandbox& sandbox, const std::vector<int>& checks,
                                            const run_outcome& run) {
  std::vector<check_result> out;
  lua_State* L = sandbox.state();
  for (std::size_t i = 0; i < checks.size(); ++i) {
    // Several checks (one per `expect` block) are told apart in the report by number.
    check_result c{i == 0 ? "check" : "check " + std::to_string(i + 1), true,
                   "custom check passed"};
    lua_State* co = lua_newthread(L);
    lua_rawgeti(co, LUA_REGISTRYINDEX, checks[i]);
    push_run(co, run);
    run_usage used;  // a check that yields is not resumed: its budget is its own
    auto r = sandbox.resume(co, 1, used);
    if (r.st == run_result::status::failed) {
      c.passed = false;
      c.script_error = true;
      c.detail = "custom check failed with an error: " + r.error;
    } else if (r.st == run_result::status::yielded) {
      c.passed = false;
      c.script_error = true;
      // Where it paused, as for every other error of a check.
      c.detail = lua_position(co) + " custom check yielded; checks cannot sleep";
    } else {
      int base = lua_gettop(co) - r.results + 1;
      if (r.results == 0 || lua_type(co, base) != LUA_TBOOLEAN) {
        // A reason returned alone, or nothing at all: neither may pass or fail by accident.
        c.passed = false;
        c.script_error = true;
        c.detail = lines_of(co, checks[i]).position + " custom check returned " +
                   (r.results == 0 ? std::string("nothing") : returned_value(co, base)) +
                   "; it must return true, or false and a reason";
      } else {
        c.passed = lua_toboolean(co, base);
        const char* msg = r.results > 1 ? lua_tostring(co, base + 1) : nullptr;
        // A pass may carry a note too: "not exercised: ..." where the fault never fired.
        if (msg || !c.passed) c.detail = msg ? msg : "custom check returned false";
      }
    }
    lua_pop(L, 1);  // the thread
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace smtpfault::script
