#include "script/client_script.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>

#include "proto/data_encoding.hpp"
#include "proto/duration.hpp"
#include "proto/near_miss.hpp"
#include "proto/sasl.hpp"
#include "script/catalogue.hpp"
#include "script/lua_error_hints.hpp"
#include "script/lua_fields.hpp"
#include "script/lua_modules.hpp"
#include "script/source_scan.hpp"

namespace smtpfault::script {

namespace {

char op_marker;  // first value of every yield to the driver

constexpr const char* op_names[] = {"connect",     "write",         "read_reply", "tls_handshake",
                                    "wait_closed", "shutdown_send", "reset",      "close",
                                    "sleep",       "give_up",       "finish",     "check_ca"};

client_script& client_of(lua_State* L) {
  return *static_cast<client_script*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// client._op(t): hands t to the driver; the driver's op_result table comes back.
int api_op(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_isyieldable(L)) return luaL_error(L, "network calls cannot be made from here");
  // A coroutine of the script's own would get the op back instead of the driver.
  if (L != client_of(L).thread()) {
    lua_pushstring(L, "network calls and skip() cannot be made inside a coroutine");
    return lua_error(L);  // named at the script's line, not the library's
  }
  lua_pushlightuserdata(L, &op_marker);
  lua_pushvalue(L, 1);
  return lua_yield(L, 2);
}

std::string field_string(lua_State* L, int t, const char* key) {
  std::string out;
  lua_pushstring(L, key);
  if (lua_rawget(L, t) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
    std::size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    out.assign(s, len);
  }
  lua_pop(L, 1);
  return out;
}

double field_number(lua_State* L, int t, const char* key, double fallback = 0) {
  lua_pushstring(L, key);
  lua_rawget(L, t);
  double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : fallback;
  lua_pop(L, 1);
  return v;
}

bool field_bool(lua_State* L, int t, const char* key) {
  lua_pushstring(L, key);
  lua_rawget(L, t);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

// The string at idx whole (a reply may hold NUL octets), or "" when it is not one.
std::string whole_string(lua_State* L, int idx) {
  std::size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  return s ? std::string(s, len) : std::string();
}

// Raised without a position: the library adds the script line that called check or report.
int keeping_too_much(lua_State* L) {
  lua_pushliteral(L,
                  "memory limit exceeded: the verdicts and reports kept (check, expect, report) "
                  "would pass the script's memory limit");
  return lua_error(L);
}

// client._step(passed, name, detail, conn): one verdict, at the script line that caused it.
int api_step(lua_State* L) {
  // Checked before any C++ object exists: luaL_error does not unwind them.
  std::size_t name_len = 0, detail_len = 0;
  lua_tolstring(L, 2, &name_len);
  lua_tolstring(L, 3, &detail_len);
  if (client_of(L).keeps_too_much(name_len + detail_len)) return keeping_too_much(L);
  client_step s;
  s.passed = lua_toboolean(L, 1);
  s.name = whole_string(L, 2);
  s.detail = whole_string(L, 3);
  s.conn = static_cast<int>(lua_tointeger(L, 4));
  s.where = lua_position(L);
  client_of(L).add_step(std::move(s));
  return 0;
}

// client._report(key, value, text): text is the Lua library's rendering of a table value.
int api_report(lua_State* L) {
  using kind = client_report::kind;
  // Every call that may raise a Lua error (a longjmp) comes before the report, which holds
  // strings, exists: plain values until then.
  luaL_checkstring(L, 1);
  kind type = kind::text;
  long long integer = 0;
  double number = 0;
  switch (lua_type(L, 2)) {
    case LUA_TNUMBER:
      type = lua_isinteger(L, 2) ? kind::integer : kind::number;
      integer = lua_tointeger(L, 2);
      number = lua_tonumber(L, 2);
      break;
    case LUA_TBOOLEAN:
      type = kind::boolean;
      integer = lua_toboolean(L, 2);
      break;
    case LUA_TNIL:
      type = kind::nil;
      break;
    default:
      break;
  }
  if (type == kind::nil) {
    lua_pushliteral(L, "nil");  // as Lua prints it; JSON has null
  } else if (type == kind::number && number != number) {
    lua_pushliteral(L, "nan");  // as the JSON report spells it, not the platform ("-nan")
  } else if (lua_type(L, 3) == LUA_TSTRING) {
    lua_pushvalue(L, 3);
  } else {
    luaL_tolstring(L, 2, nullptr);  // pushed: whole_string reads it with its length
  }
  if (client_of(L).keeps_too_much(lua_rawlen(L, 1) + lua_rawlen(L, -1))) return keeping_too_much(L);
  client_of(L).add_report({whole_string(L, 1), whole_string(L, -1), type, integer, number});
  return 0;
}

int api_base64_encode(lua_State* L) {
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  std::string out = proto::base64_encode(std::string_view(s, len));
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int api_base64_decode(lua_State* L) {
  std::size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  auto out = proto::base64_decode(std::string_view(s, len));
  if (!out) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, out->data(), out->size());
  return 1;
}

// client._now(): seconds on a monotonic clock, for measuring how long a server took.
int api_clock_now(lua_State* L) {
  std::chrono::duration<double> t = std::chrono::steady_clock::now().time_since_epoch();
  lua_pushnumber(L, t.count());
  return 1;
}

// client._where(): "file:line:" of the script's line that called into the library, for the
// library's errors: a script that catches one with pcall still sees where it was made.
int api_where(lua_State* L) {
  char where[256];
  {
    const std::string w = lua_position(L);
    std::snprintf(where, sizeof where, "%s", w.c_str());
  }
  lua_pushstring(L, where);
  return 1;
}

// client._encode_data(body, eol): see proto::encode_data.
int api_encode_data(lua_State* L) {
  std::size_t blen = 0, elen = 0;
  const char* body = luaL_checklstring(L, 1, &blen);
  const char* eol = luaL_optlstring(L, 2, "\r\n", &elen);
  std::string out = proto::encode_data(std::string_view(body, blen), std::string_view(eol, elen));
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int api_cram_md5(lua_State* L) {
  std::size_t plen = 0, clen = 0;
  const char* password = luaL_checklstring(L, 1, &plen);
  const char* challenge = luaL_checklstring(L, 2, &clen);
  std::string digest =
      proto::cram_md5_digest(std::string_view(password, plen), std::string_view(challenge, clen));
  lua_pushlstring(L, digest.data(), digest.size());
  return 1;
}

void push_target(lua_State* L, const client_options& o) {
  lua_createtable(L, 0, 5);
  if (!o.target.host.empty()) set_string(L, "host", o.target.host);
  if (o.target.port) {
    lua_pushinteger(L, o.target.port);
    lua_setfield(L, -2, "port");
  }
  const std::string& tls_host = o.target.tls_host.empty() ? o.target.host : o.target.tls_host;
  if (o.target.tls_port && !tls_host.empty()) {
    set_string(L, "tls_host", tls_host);
    lua_pushinteger(L, o.target.tls_port);
    lua_setfield(L, -2, "tls_port");
  }
  lua_pushnumber(L, static_cast<double>(o.timeout.count()) / 1000.0);
  lua_setfield(L, -2, "timeout");
}

void push_reply(lua_State* L, const proto::reply& r) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, r.code);
  lua_setfield(L, -2, "code");
  if (!r.enhanced.empty()) set_string(L, "enhanced", r.enhanced);
  lua_createtable(L, static_cast<int>(r.lines.size()), 0);
  std::string text;
  for (std::size_t i = 0; i < r.lines.size(); ++i) {
    lua_pushlstring(L, r.lines[i].data(), r.lines[i].size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
    text += (i ? "\n" : "") + r.lines[i];
  }
  lua_setfield(L, -2, "lines");
  set_string(L, "text", text);
}

void push_result(lua_State* L, const op_result& r) {
  lua_createtable(L, 0, 6);
  lua_pushboolean(L, r.ok);
  lua_setfield(L, -2, "ok");
  if (!r.error.empty()) set_string(L, "err", r.error);
  if (r.conn) {
    lua_pushinteger(L, r.conn);
    lua_setfield(L, -2, "conn");
  }
  if (r.reply) {
    push_reply(L, *r.reply);
    lua_setfield(L, -2, "reply");
  }
  lua_pushinteger(L, static_cast<lua_Integer>(r.sent));
  lua_setfield(L, -2, "sent");
  lua_pushnumber(L, r.elapsed);
  lua_setfield(L, -2, "elapsed");
  if (!r.tls_version.empty()) set_string(L, "tls_version", r.tls_version);
  if (!r.ended.empty()) {
    lua_createtable(L, 0, static_cast<int>(r.ended.size()));
    for (const auto& [id, why] : r.ended) {
      lua_pushlstring(L, why.data(), why.size());
      lua_rawseti(L, -2, id);
    }
    lua_setfield(L, -2, "ended");
  }
}

// Reads the op table at index t; an empty optional names a bad op.
std::optional<client_op> read_op(lua_State* L, int t) {
  client_op op;
  const std::string name = field_string(L, t, "op");
  bool known = false;
  for (std::size_t i = 0; i < std::size(op_names); ++i) {
    if (name == op_names[i]) {
      op.what = static_cast<client_op::kind>(i);
      known = true;
    }
  }
  if (!known) return std::nullopt;
  op.conn = static_cast<int>(field_number(L, t, "conn"));
  op.host = field_string(L, t, "host");
  op.port = static_cast<std::uint16_t>(field_number(L, t, "port"));
  op.tls = field_bool(L, t, "tls");
  op.verify = field_bool(L, t, "verify");
  op.ca_file = field_string(L, t, "ca");
  op.sni = field_string(L, t, "sni");
  op.may_fail = field_bool(L, t, "may_fail");
  op.buffered = field_bool(L, t, "buffered");
  op.bytes = field_string(L, t, "bytes");
  op.chunk = static_cast<std::size_t>(field_number(L, t, "chunk"));
  op.every = proto::millis_from_seconds(field_number(L, t, "every"), true);
  op.timeout = proto::millis_from_seconds(field_number(L, t, "timeout"), true);
  op.label = field_string(L, t, "label");
  return op;
}

}  // namespace

const char* op_name(client_op::kind k) {
  return op_names[static_cast<int>(k)];
}

client_script::client_script(std::string name, client_options opts)
    : name_(std::move(name)), opts_(std::move(opts)), sandbox_(opts_.limits) {}

client_script::~client_script() {
  if (thread_ref_ != LUA_NOREF) luaL_unref(sandbox_.state(), LUA_REGISTRYINDEX, thread_ref_);
}

void client_script::add_report(client_report r) {
  kept_octets_ += entry_overhead + r.key.size() + r.text.size();
  for (auto& old : reports_) {
    if (old.key == r.key) {
      kept_octets_ -= entry_overhead + old.key.size() + old.text.size();
      old = std::move(r);
      return;
    }
  }
  reports_.push_back(std::move(r));
}

std::optional<std::string> client_script::init(const std::string& code) {
  lua_State* L = sandbox_.state();
  const luaL_Reg host[] = {{"_op", api_op},
                           {"_step", api_step},
                           {"_report", api_report},
                           {"_base64_encode", api_base64_encode},
                           {"_base64_decode", api_base64_decode},
                           {"_cram_md5", api_cram_md5},
                           {"_encode_data", api_encode_data},
                           {"_now", api_clock_now},
                           {"_where", api_where},
                           {nullptr, nullptr}};
  lua_newtable(L);
  lua_pushlightuserdata(L, this);
  luaL_setfuncs(L, host, 1);
  lua_setglobal(L, "client");
  push_target(L, opts_);
  lua_setglobal(L, "target");
  set_params_global(L, opts_.params);
  sandbox_.set_module_folder(opts_.module_folder);
  sandbox_.allow_module_waits();
  sandbox_.seed_random(opts_.seed);
  if (auto err = run_library(sandbox_, client_library())) return err;
  co_ = lua_newthread(L);
  thread_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  return sandbox_.load_text(co_, code, name_);
}

proto::expected<std::unique_ptr<client_script>, std::string> client_script::load(
    const std::string& code, const std::string& chunkname, client_options opts) {
  // Run as a client script, a server scenario fails at its first expect with a puzzling error.
  if (auto hook = find_hook_definition(code, "function ", "(")) {
    return proto::unexpected{chunkname + ":" + std::to_string(hook->line) + ": defines " +
                             hook->function +
                             ", a hook: this is a server scenario, which serve --scenario and "
                             "test --scenario run; smtpfault run takes client scripts"};
  }
  std::unique_ptr<client_script> s(new client_script(chunkname, std::move(opts)));
  if (auto err = s->init(code)) return proto::unexpected{*err};
  s->source_ = code;
  return s;
}

namespace {

std::size_t lines_in(std::string_view text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
}

}  // namespace

// Reads the globals of the state as loaded (the library's; the script has not run): a call the
// script or a module it requires makes, of a name none of them defines and the state does not
// have, close to a function the state has.
std::optional<std::string> client_script::check_without_running() {
  auto modules = compile_literal_requires(sandbox_, source_, name_);
  if (!modules) return modules.error();
  lua_State* L = sandbox_.state();
  std::vector<std::string> globals, functions;
  lua_pushglobaltable(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) {  // raw: no metamethod of the script runs here
    if (lua_type(L, -2) == LUA_TSTRING) {
      globals.emplace_back(lua_tostring(L, -2));
      if (lua_isfunction(L, -1) && globals.back()[0] != '_') functions.push_back(globals.back());
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  // Each text with the others after it: what any of them defines counts, and only the calls on
  // the first text's own lines are its.
  std::vector<std::tuple<std::string, std::string, std::string_view>> texts{{"", name_, source_}};
  for (const auto& m : *modules)
    texts.emplace_back(m.required_as + " ", m.path, m.text);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto& [prefix, file, text] = texts[i];
    std::string code(text);
    for (std::size_t j = 0; j < texts.size(); ++j)
      if (j != i) code += "\n" + std::string(std::get<2>(texts[j]));
    for (const auto& call : undefined_calls(code)) {
      if (call.line > lines_in(text)) break;
      if (std::find(globals.begin(), globals.end(), call.name) != globals.end()) continue;
      // Found now rather than at run time, after connecting and perhaps half a transaction.
      if (left_out_of_sandbox(call.name)) {
        return prefix + file + ":" + std::to_string(call.line) + ": " + call.name +
               (call.name == "print"
                    ? " is not available in a client script: report(key, value) adds to the report"
                    : " is not available in the sandbox: scripts reach no files or processes");
      }
      if (auto hint = proto::did_you_mean(call.name, functions); !hint.empty()) {
        return prefix + file + ":" + std::to_string(call.line) + ": " + call.name +
               " is not defined" + hint;
      }
    }
  }
  return std::nullopt;
}

proto::expected<std::unique_ptr<client_script>, std::string> client_script::load_named(
    const std::string& name_or_path, client_options opts) {
  auto source = find_client_scenario_source(name_or_path);
  if (!source) return proto::unexpected{source.error()};
  opts.module_folder = source->folder;
  return load(source->code, source->chunkname, std::move(opts));
}

script_step client_script::start() {
  if (started_) return {script_step::status::failed, {}, "client script started twice"};
  started_ = true;
  last_step_at_ = std::chrono::steady_clock::now();
  used_ = {};
  return after(sandbox_.resume(co_, 0, used_));
}

script_step client_script::resume(const op_result& r) {
  if (!started_ || lua_status(co_) != LUA_YIELD) {
    return {script_step::status::failed, {}, "client script is not waiting for a result"};
  }
  push_result(co_, r);
  return after(sandbox_.resume(co_, 1, used_));
}

script_step client_script::after(const run_result& r) {
  script_step out;
  if (r.st == run_result::status::failed) {
    out.st = script_step::status::failed;
    out.error = r.error;
    return out;
  }
  if (r.st == run_result::status::finished) {
    const bool returned_value = r.results > 0 && !lua_isnil(co_, -r.results);
    lua_pop(co_, r.results);
    if (returned_value) {
      out.st = script_step::status::failed;
      out.error = returned_a_value(name_);
    }
    return out;
  }
  if (r.results != 2 || lua_touserdata(co_, -2) != &op_marker || !lua_istable(co_, -1)) {
    out.st = script_step::status::failed;
    out.error = lua_position(co_) +
                " the script yielded outside the client API (coroutine.yield at top level?)";
    return out;
  }
  auto op = read_op(co_, lua_gettop(co_));
  lua_pop(co_, 2);
  if (!op) {
    out.st = script_step::status::failed;
    out.error = lua_position(co_) + " unknown client operation";
    return out;
  }
  out.st = script_step::status::op;
  out.op = std::move(*op);
  return out;
}

}  // namespace smtpfault::script
