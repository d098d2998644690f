#include "script/lua_error_hints.hpp"

#include <lua.hpp>

#include <algorithm>
#include <string_view>
#include <vector>

#include "proto/near_miss.hpp"

namespace smtpfault::script {

namespace {

// Names a misspelt call may have meant. For a global: the global functions and those of global
// tables ("smtp.reply", "string.format"). For a method (c:expct(), smtp.reply(451):dealy(2)):
// the functions the scripts' own libraries define (a connection's methods share their names)
// and an action's methods, not Lua's base library (c:paris() did not mean pairs).
std::vector<std::string> callable_names(lua_State* L, bool methods) {
  std::vector<std::string> names;
  // A dead coroutine's stack may end where its error was raised: make room for what is pushed.
  if (!lua_checkstack(L, 8)) return names;
  const int top = lua_gettop(L);
  // The functions of the table on top of the stack, as prefix + name.
  const auto add_functions = [&](const std::string& prefix, bool lua_only) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {  // raw: a table's __index is never run from here
      if (lua_type(L, -2) == LUA_TSTRING && lua_tostring(L, -2)[0] != '_' &&
          lua_isfunction(L, -1) && !(lua_only && lua_iscfunction(L, -1))) {
        names.push_back(prefix + lua_tostring(L, -2));
      }
      lua_pop(L, 1);
    }
  };
  lua_pushglobaltable(L);
  add_functions("", methods);
  if (methods) {
    // Raw reads: a script's metamethods must not run here, outside any protected call.
    lua_pushstring(L, "smtp");
    if (lua_rawget(L, -2) == LUA_TTABLE) {
      lua_pushstring(L, "_action_metatable");
      if (lua_rawget(L, -2) == LUA_TTABLE) add_functions("", false);
    }
  } else {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_tostring(L, -2)[0] != '_' && lua_istable(L, -1)) {
        add_functions(std::string(lua_tostring(L, -2)) + ".", false);
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return names;
}

// "expct" -> " (did you mean 'expect'?)", "smtp_reply" -> "smtp.reply", c:expct() -> expect:
// the closest function name, for a call of one that does not exist.
std::string misspelt_call_hint(lua_State* L, const std::string& msg) {
  for (std::string_view marker : {"(global '", "(method '"}) {
    const auto at = msg.find("attempt to call a nil value " + std::string(marker));
    if (at == std::string::npos) continue;
    const auto start = at + std::string_view("attempt to call a nil value ").size() + marker.size();
    const auto end = msg.find('\'', start);
    if (end == std::string::npos) return "";
    const std::string name = msg.substr(start, end - start);
    return proto::did_you_mean(name, callable_names(L, marker == "(method '"));
  }
  return "";
}

// The fields of the tables smtpfault hands to scripts (the session, hook arguments, a check's
// run, a client's replies): a nil one among them is most likely a misspelt name.
const std::vector<std::string>& handed_field_names() {
  static const std::vector<std::string> names = {"acknowledged",
                                                 "address",
                                                 "anomalies",
                                                 "argument",
                                                 "at",
                                                 "auth_user",
                                                 "authzid",
                                                 "client",
                                                 "client_ip",
                                                 "client_port",
                                                 "code",
                                                 "command",
                                                 "commands",
                                                 "data",
                                                 "delivered",
                                                 "domain",
                                                 "early_talker",
                                                 "ended",
                                                 "enhanced",
                                                 "exchanges",
                                                 "exit_codes",
                                                 "headers",
                                                 "helo",
                                                 "id",
                                                 "implicit_tls",
                                                 "known",
                                                 "last",
                                                 "lines",
                                                 "lmtp",
                                                 "local_part",
                                                 "mail_from",
                                                 "mechanism",
                                                 "messages",
                                                 "params",
                                                 "password",
                                                 "pipelined",
                                                 "pipelined_after",
                                                 "quit",
                                                 "rcpts",
                                                 "recipient",
                                                 "recipients",
                                                 "reply",
                                                 "run",
                                                 "sessions",
                                                 "size",
                                                 "started",
                                                 "state",
                                                 "subject",
                                                 "text",
                                                 "tls",
                                                 "tls_version",
                                                 "user",
                                                 "verb"};
  return names;
}

// "attempt to index a nil value (field 'addr')": the name it was probably meant to be.
std::string misspelt_field_hint(const std::string& msg) {
  constexpr std::string_view marker = "a nil value (field '";
  const auto at = msg.find(marker);
  if (at == std::string::npos) return "";
  const auto start = at + marker.size();
  const auto end = msg.find('\'', start);
  if (end == std::string::npos) return "";
  const std::string name = msg.substr(start, end - start);
  const auto& known = handed_field_names();
  if (std::find(known.begin(), known.end(), name) != known.end()) return "";
  if (auto near = proto::did_you_mean(name, known); !near.empty()) return near;
  // Or cut short: "addr" for "address".
  std::vector<std::string> longer;
  for (const auto& k : known)
    if (name.size() >= 3 && k.starts_with(name)) longer.push_back(k);
  return longer.size() == 1 ? " (did you mean '" + longer[0] + "'?)" : "";
}

// print has a hint of its own (what to write instead).
constexpr const char* left_out_globals[] = {"os",      "io",    "dofile",        "loadfile",
                                            "package", "debug", "collectgarbage"};

// "attempt to call a nil value (global 'print')" says what, not why.
std::string sandbox_hint(const std::string& msg) {
  if (msg.find("(global 'print')") != std::string::npos) {
    return " (print is not available here: in a scenario smtp.log writes to the session's "
           "transcript; in a client script report(key, value) adds to the report)";
  }
  for (const char* name : left_out_globals) {
    if (msg.find(std::string("(global '") + name + "')") != std::string::npos) {
      return std::string(" ('") + name +
             "' is not available in the sandbox: scripts reach no files or processes)";
    }
  }
  if (msg.find("(field 'dump')") != std::string::npos) {
    return " (string.dump is not available in the sandbox: it makes bytecode, which scripts "
           "may not load)";
  }
  return "";
}

}  // namespace

bool left_out_of_sandbox(std::string_view name) {
  if (name == "print") return true;
  for (const char* left_out : left_out_globals)
    if (name == left_out) return true;
  return false;
}

std::string error_hint(lua_State* L, const std::string& msg) {
  auto hint = sandbox_hint(msg);
  if (hint.empty()) hint = misspelt_call_hint(L, msg);
  if (hint.empty()) hint = misspelt_field_hint(msg);
  return hint;
}

}  // namespace smtpfault::script
