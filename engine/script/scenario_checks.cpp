#include "script/scenario_checks.hpp"

#include <lua.hpp>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "proto/command.hpp"
#include "proto/near_miss.hpp"
#include "script/catalogue.hpp"
#include "script/lua_error_hints.hpp"
#include "script/source_scan.hpp"

namespace smtpfault::script {

using session::hook;

namespace {

// The hook a misspelt name most likely meant: a near miss, or a hook name with something
// appended ("on_rcpt_to"); "" when none is close.
std::string closest_hook(const std::string& name) {
  std::string best;
  std::size_t best_d = 3;
  for (hook h : all_hooks) {
    std::string candidate = std::string("on_") + session::hook_name(h);
    std::size_t d = proto::edit_distance(name, candidate);
    if (name.rfind(candidate, 0) == 0) d = std::min<std::size_t>(d, 2);
    if (d < best_d) {
      best = candidate;
      best_d = d;
    }
  }
  return best;
}

std::string lowercase(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::size_t distance_to_a_hook(const std::string& name) {
  std::size_t best = name.size() + 3;
  for (hook h : all_hooks)
    best = std::min(best, proto::edit_distance(name, std::string("on_") + session::hook_name(h)));
  return best;
}

// Whether a global was meant as a hook. A function: any "on_*" name, or one a slip away from a
// hook in any case ("onrcpt", "On_Rcpt", "onRcpt"). Any other value: only a near miss
// ("on_connected = 1"); "on_mail_count = 0" is a variable like any other.
bool meant_as_hook(lua_State* L, const std::string& name) {
  const std::string lower = lowercase(name);
  if (lua_isfunction(L, -1)) return lower.rfind("on_", 0) == 0 || distance_to_a_hook(lower) <= 1;
  return name.rfind("on_", 0) == 0 && distance_to_a_hook(name) <= 2;
}

// smtp.reply(550):dealy(2) would fail only when a client reaches it, as smtp.rejct would:
// "LINE: ..." for the first method no action has, with the smtp table on top of the stack.
std::optional<std::string> unknown_method(
    lua_State* L, const std::vector<std::pair<std::string, std::size_t>>& chained) {
  if (chained.empty()) return std::nullopt;
  lua_pushstring(L, "_action_metatable");
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 1);
    return std::nullopt;
  }
  std::vector<std::string> methods;
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
      methods.emplace_back(lua_tostring(L, -2));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  for (const auto& [name, line] : chained) {
    if (std::find(methods.begin(), methods.end(), name) != methods.end()) continue;
    std::sort(methods.begin(), methods.end());
    std::string all;
    for (const auto& m : methods)
      all += (all.empty() ? ":" : ", :") + m + "()";
    return std::to_string(line) + ": an action has no method :" + name + "()" +
           proto::did_you_mean(name, methods) + "; its methods are " + all;
  }
  return std::nullopt;
}

// smtp.rejct(554) in a hook would fail only when a client reaches it: named at load instead,
// with the library's own message and hint. Names the scenario assigns are its own.
// Run after check_api_kept, which makes sure the global smtp is still the library's table.
std::optional<std::string> check_smtp_names(lua_State* L, std::string_view code,
                                            const std::string& chunkname) {
  raw_global(L, "smtp");
  const auto references = smtp_references(code);
  // A name the scenario assigns anywhere (smtp.helper = function ..., smtp.reply = nil) is its
  // own wherever it is used.
  std::set<std::string> assigned;
  for (const auto& r : references)
    if (r.assigned) assigned.insert(r.name);
  for (const auto& r : references) {
    if (assigned.count(r.name)) continue;
    lua_pushlstring(L, r.name.data(), r.name.size());
    const bool known = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 1);
    if (known) {
      if (auto why = unknown_method(L, r.chained)) {
        lua_pop(L, 1);
        return chunkname + ":" + *why;
      }
      continue;
    }
    // The library's __index says what does not exist and what was probably meant.
    lua_pushcfunction(L, [](lua_State* S) {
      lua_gettable(S, 1);
      return 1;
    });
    lua_pushvalue(L, -2);
    lua_pushlstring(L, r.name.data(), r.name.size());
    std::string message = "smtp." + r.name + " does not exist";
    if (lua_pcall(L, 2, 1, 0) != LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
      std::string_view text = lua_tostring(L, -1);
      if (auto at = text.find("smtp."); at != std::string_view::npos) message = text.substr(at);
    }
    lua_pop(L, 2);
    return chunkname + ":" + std::to_string(r.line) + ": " + message;
  }
  lua_pop(L, 1);
  return std::nullopt;
}

}  // namespace

// The last line that assigns to name ("on_rcpt = 5"): the value in force comes from it. 0 when
// no line starts so.
std::size_t assignment_line(std::string_view code, std::string_view name) {
  std::size_t line = 1, last = 0;
  for (std::size_t start = 0; start < code.size(); ++line) {
    const auto end = std::min(code.find('\n', start), code.size());
    auto text = code.substr(start, end - start);
    start = end + 1;
    text.remove_prefix(std::min(text.find_first_not_of(" \t"), text.size()));
    if (!text.starts_with(name)) continue;
    text.remove_prefix(name.size());
    text.remove_prefix(std::min(text.find_first_not_of(" \t"), text.size()));
    if (text.starts_with('=') && !text.starts_with("==")) last = line;
  }
  return last;
}

// Pushes the global `name` without running a metamethod of _G: a script may have given it an
// __index (a "strict globals" table) that raises, and the host reads outside a protected call.
int raw_global(lua_State* L, const char* name) {
  lua_pushglobaltable(L);
  lua_pushstring(L, name);
  const int type = lua_rawget(L, -2);
  lua_remove(L, -2);
  return type;
}

namespace {

// The name the docs give a hook's second parameter, and others meant the same; none for a
// hook that takes the session alone.
std::vector<std::string_view> second_parameter_names(hook h) {
  const std::string_view name = session::hook_name(h);
  if (name == "helo" || name == "ehlo") return {"name"};
  if (name == "auth") return {"auth"};
  if (name == "mail") return {"mail"};
  if (name == "rcpt") return {"rcpt", "recipient"};
  if (name == "bdat") return {"chunk"};
  if (name == "message") return {"msg", "message"};
  if (name == "command") return {"cmd", "command"};
  return {};
}

}  // namespace

std::optional<std::string> check_hook_parameters(lua_State* L) {
  for (hook h : all_hooks) {
    const auto names = second_parameter_names(h);
    if (names.empty()) continue;
    const std::string hook_fn = std::string("on_") + session::hook_name(h);
    if (raw_global(L, hook_fn.c_str()) != LUA_TFUNCTION) {
      lua_pop(L, 1);
      continue;
    }
    lua_Debug ar;
    lua_pushvalue(L, -1);  // lua_getinfo pops the function
    lua_getinfo(L, ">Su", &ar);
    // With the function on top, lua_getlocal names its parameters without running it.
    const char* first = ar.nparams == 1 ? lua_getlocal(L, nullptr, 1) : nullptr;
    lua_pop(L, 1);
    if (!first || std::find(names.begin(), names.end(), first) == names.end()) continue;
    return std::string(ar.short_src) + ":" + std::to_string(ar.linedefined) + ": " + hook_fn + "(" +
           first + ") takes the session first: a hook is called as " + hook_fn + "(s, " +
           std::string(names.front()) + "), so its one parameter '" + first +
           "' would hold the session";
  }
  return std::nullopt;
}

// Global names a scenario may define beyond hooks are free; names meant as hooks must be hooks.
std::optional<std::string> check_hook_names(lua_State* L, std::string_view code,
                                            const std::string& chunkname) {
  std::string known;
  for (hook h : all_hooks)
    known += std::string(" on_") + session::hook_name(h);
  lua_pushglobaltable(L);
  lua_pushnil(L);
  // Each one found, by line: the globals come in hash order, and the file's first slip is the
  // one to name (with the others after it, so that one load names them all).
  struct unknown_hook {
    int line;
    std::string name, message;
  };
  std::vector<unknown_hook> found;
  while (lua_next(L, -2)) {
    std::string name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (!name.empty() && (known + " ").find(" " + name + " ") == std::string::npos &&
        meant_as_hook(L, name)) {
      std::string where = chunkname + ":";
      int line = 0;
      lua_Debug ar;
      lua_pushvalue(L, -1);  // lua_getinfo pops the function
      if (lua_isfunction(L, -1) && lua_getinfo(L, ">S", &ar) && ar.linedefined > 0) {
        line = ar.linedefined;
        where = std::string(ar.short_src) + ":" + std::to_string(line) + ":";
      } else {
        if (!lua_isfunction(L, -1)) lua_pop(L, 1);
        if (const auto at = assignment_line(code, name)) {
          line = static_cast<int>(at);
          where = chunkname + ":" + std::to_string(line) + ":";
        }
      }
      const std::string lower = lowercase(name);
      std::string hint = closest_hook(lower);
      hint = hint.empty() ? "" : " (did you mean " + hint + "?)";
      // A command with no hook of its own (RSET, QUIT, NOOP, VRFY ...) is on_command's.
      if (const auto verb = proto::verb_named(lower.substr(std::min<std::size_t>(3, lower.size())));
          lower.rfind("on_", 0) == 0 && verb != proto::verb::unknown &&
          (known + " ").find(" " + lower + " ") == std::string::npos) {
        hint = verb == proto::verb::lhlo
                   ? " (on_ehlo is called for LHLO as well as EHLO; s.commands.LHLO counts "
                     "LHLOs)"
                   : " (" + std::string(proto::verb_name(verb)) +
                         " has no hook of its own: on_command sees it, with cmd.verb == \"" +
                         std::string(proto::verb_name(verb)) + "\")";
      }
      found.push_back(
          {line, name, where + " unknown hook '" + name + "'" + hint + "; hooks are:" + known});
    }
    lua_pop(L, 1);
  }
  std::optional<std::string> error;
  if (!found.empty()) {
    std::sort(found.begin(), found.end(),
              [](const auto& a, const auto& b) { return a.line < b.line; });
    error = found.front().message;
    for (std::size_t i = 1; i < found.size(); ++i) {
      *error += (i == 1 ? " (also unknown: " : ", ") + found[i].name + " at line " +
                std::to_string(found[i].line);
    }
    if (found.size() > 1) *error += ")";
  }
  lua_settop(L, 0);
  return error;
}

// "local function on_rcpt" defines a function no one can find: the hook never runs.
std::optional<std::string> check_local_hooks(lua_State* L, std::string_view code,
                                             const std::string& chunkname) {
  for (auto [before, after] : {std::pair{"local function ", "("}, std::pair{"local ", " ="}}) {
    auto local = find_hook_definition(code, before, after);
    if (!local) continue;
    raw_global(L, local->function.c_str());
    const bool global_too = lua_isfunction(L, -1);
    lua_pop(L, 1);
    if (!global_too) {
      return chunkname + ":" + std::to_string(local->line) + ": " + local->function +
             " is local, so it is never called: hooks must be global functions (drop 'local')";
    }
  }
  return std::nullopt;
}

// Two top-level `function on_rcpt(` in one file: Lua keeps the last, and the first never runs
// (a hook pasted in from another scenario). Definitions inside a block (an `if` choosing one)
// are indented and left alone.
namespace {

// The lines of code that begin `function NAME(`: the definitions of a hook written there.
std::vector<std::size_t> definition_lines(std::string_view code, const std::string& function) {
  std::vector<std::size_t> lines;
  const std::string head = "function " + function;
  std::size_t line = 1;
  for (std::size_t start = 0; start < code.size(); ++line) {
    const auto end = std::min(code.find('\n', start), code.size());
    auto text = code.substr(start, end - start);
    start = end + 1;
    if (!text.starts_with(head)) continue;
    text.remove_prefix(head.size());
    // `function on_rcpt (s, r)` too: Lua takes blanks before the parameters.
    text.remove_prefix(std::min(text.find_first_not_of(" \t"), text.size()));
    if (text.starts_with('(')) lines.push_back(line);
  }
  return lines;
}

// Where the hook that runs was defined: its file (as chunkname) and line; false when none is.
bool hook_origin(lua_State* L, const std::string& function, std::string& file, int& line) {
  raw_global(L, function.c_str());
  lua_Debug ar;
  if (!lua_isfunction(L, -1) || !lua_getinfo(L, ">S", &ar)) {  // getinfo pops the function
    lua_pop(L, 1);
    return false;
  }
  file = ar.source[0] == '@' ? ar.source + 1 : ar.source;
  line = ar.linedefined;
  return true;
}

}  // namespace

std::optional<std::string> check_duplicate_hooks(
    lua_State* L, const std::vector<std::pair<std::string, std::string_view>>& files) {
  for (hook h : all_hooks) {
    const std::string function = std::string("on_") + session::hook_name(h);
    std::string file;
    int defined_at = 0;
    if (!hook_origin(L, function, file, defined_at)) continue;
    for (const auto& [chunkname, code] : files) {
      const bool same_file = chunkname == file;
      for (auto line : definition_lines(code, function)) {
        if (same_file && static_cast<int>(line) == defined_at) continue;  // the one that runs
        return chunkname + ":" + std::to_string(line) + ": " + function + " is defined again at " +
               (same_file ? "line " : file + ":") + std::to_string(defined_at) +
               ", and only that one runs: merge the two into one function";
      }
    }
  }
  return std::nullopt;
}

// A call of a function the sandbox leaves out (print, dofile), which the code does not define
// itself: inside a hook it would fail every session, found only when a client came.
std::optional<std::string> check_removed_calls(std::string_view code,
                                               const std::string& chunkname) {
  for (const auto& call : undefined_calls(code)) {
    if (!left_out_of_sandbox(call.name)) continue;
    return chunkname + ":" + std::to_string(call.line) + ": " + call.name +
           (call.name == "print"
                ? " is not available in a scenario: smtp.log writes to the session's transcript"
                : " is not available in the sandbox: scripts reach no files or processes");
  }
  return std::nullopt;
}

// What the source calls that cannot work: a misspelt smtp function, an action made and dropped.
std::optional<std::string> check_calls(lua_State* L, std::string_view code,
                                       const std::string& chunkname) {
  if (auto err = check_smtp_names(L, code, chunkname)) return err;
  if (auto err = check_removed_calls(code, chunkname)) return err;
  if (auto dropped = find_discarded_action(code)) {
    return chunkname + ":" + std::to_string(dropped->line) + ": " + dropped->call +
           "(...) makes an action and drops it, so it does nothing: a hook acts through what it "
           "returns (return " +
           dropped->call + "(...))";
  }
  return std::nullopt;
}

// A script that assigns the global smtp (smtp = nil, smtp = {}) has thrown away the API its
// hooks call, and the expectations it declared with it.
std::optional<std::string> check_api_kept(lua_State* L, int api_ref, std::string_view code,
                                          const std::string& chunkname) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, api_ref);
  raw_global(L, "smtp");
  const bool kept = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, api_ref);
  if (kept) return std::nullopt;
  const auto line = assignment_line(code, "smtp");
  return chunkname + (line ? ":" + std::to_string(line) : "") +
         ": smtp is the scenario API (smtp.reply, smtp.sleep, ...) and must not be assigned: "
         "give your variable another name, or make it local";
}

}  // namespace smtpfault::script
