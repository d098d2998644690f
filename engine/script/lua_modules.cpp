#include "script/lua_modules.hpp"

#include <lua.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/near_miss.hpp"
#include "proto/reply_stream.hpp"
#include "script/catalogue.hpp"
#include "script/lua_sandbox.hpp"
#include "script/source_scan.hpp"

namespace smtpfault::script {

namespace {

// Its address keys the registry's table of modules; as a light userdata in that table it marks
// a module still running its top level (a require loop).
const char modules_key = 0;

// Words of letters, digits, '_' and '-' joined by dots: a path inside the folder, never out of
// it ("..", "/", an absolute path) and never a file other than NAME.lua.
bool valid_module_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || name.front() == '.' || name.back() == '.') return false;
  char last = 0;
  for (char c : name) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    if (!word && !(c == '.' && last != '.')) return false;
    last = c;
  }
  return true;
}

// " (did you mean 'lib.policy'?)" for a module not found whose name is a slip away from a
// module beside it: the files of the folder its last word would be in.
std::string near_module_hint(const std::string& path, std::string_view name) {
  const auto folder = std::filesystem::path(path).parent_path();
  auto files = lua_files_in(folder.empty() ? std::string(".") : folder.string());
  if (!files) return "";
  const auto dot = name.rfind('.');
  const std::string prefix(dot == std::string_view::npos ? "" : name.substr(0, dot + 1));
  std::vector<std::string> names;
  for (const auto& file : *files)
    names.push_back(prefix + std::filesystem::path(file).stem().string());
  return proto::did_you_mean(name, names);
}

// The module's text, or why it cannot be had, with a guess at the name meant when it is missing.
proto::expected<std::string, std::string> read_module(const std::string& path,
                                                      std::string_view name) {
  auto text = read_source_file(path, "module");
  std::error_code ec;
  if (text || std::filesystem::exists(path, ec)) return text;
  // The guess goes first: with one, the note on where modules are found matters less.
  auto error = text.error();
  const auto note = error.find(" (require looks beside");
  error.insert(note == std::string::npos ? error.size() : note, near_module_hint(path, name));
  return proto::unexpected{error};
}

// Pushes the module's compiled chunk and returns nothing, or returns why it cannot be had. No Lua
// error is raised here, where C++ objects live (the caller raises it), and no C++ exception
// leaves: Lua's C frames are below.
std::optional<std::string> push_module_chunk(lua_State* L, std::string_view name) try {
  auto& sandbox = lua_sandbox::of(L);
  auto path = module_path(sandbox.module_folder(), name);
  if (!path) return path.error();
  const std::string quoted = "require '" + std::string(name) + "': ";
  auto text = read_module(*path, name);
  if (!text) return quoted + text.error();
  if (auto err = sandbox.load_module(L, *text, *path, name)) return quoted + *err;
  return std::nullopt;
} catch (const std::exception& e) {
  return std::string("require: ") + e.what();
}

// Raises the error on top of the stack, a string one first prefixed with where the require is
// and what it required ("a.lua:3: require 'lib.b': lib/b.lua:2: boom"), so that the chain of
// requires leads from the script to the module's line.
int raise_from_module(lua_State* L, int status) {
  if (status == LUA_ERRRUN && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_pushliteral(L, "require '");
    lua_pushvalue(L, 1);
    lua_pushliteral(L, "': ");
    lua_pushvalue(L, -5);
    lua_concat(L, 5);
  }
  return lua_error(L);
}

// The end of a module's top level (also after it waited, in a client script: a shared login may
// connect): caches what it returned, or lets its error go on. The stack: the name, the table of
// modules, then the result or the error.
int finish_require(lua_State* L, int status, lua_KContext) {
  if (status != LUA_OK && status != LUA_YIELD) {
    // A module that failed may be required again (inside a pcall): it is not left "loading".
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, 2);
    return raise_from_module(L, status);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -2);
  lua_rawset(L, 2);
  return 1;
}

}  // namespace

proto::expected<std::string, std::string> module_path(const std::string& folder,
                                                      std::string_view name) {
  const std::string quoted = "require '" + proto::printable(name, 80) + "': ";
  if (name.ends_with(".lua") && valid_module_name(name.substr(0, name.size() - 4))) {
    return proto::unexpected{quoted + "a module is named without .lua: require(\"" +
                             std::string(name.substr(0, name.size() - 4)) + "\")"};
  }
  if (!valid_module_name(name)) {
    return proto::unexpected{
        quoted +
        "a module name is words of letters, digits, '_' and '-' joined by dots (lib.helpers is "
        "lib/helpers.lua beside the script)"};
  }
  if (folder.empty()) {
    return proto::unexpected{
        quoted +
        "modules are found beside the script's file, and this script has none (a built-in, or "
        "source text given to the API: switch by file name, {\"name\": \"/path/to/file.lua\"}, "
        "for its modules)"};
  }
  std::string path = folder == "." ? "" : folder + "/";
  for (char c : name)
    path += c == '.' ? '/' : c;
  return path + ".lua";
}

proto::expected<std::vector<lua_sandbox::module_source>, std::string> compile_literal_requires(
    lua_sandbox& sandbox, std::string_view code, const std::string& chunkname) {
  lua_State* L = sandbox.state();
  std::vector<lua_sandbox::module_source> found;
  for (const auto& r : literal_requires(code)) {
    const auto at = chunkname + ":" + std::to_string(r.line) + ": ";
    auto path = module_path(sandbox.module_folder(), r.name);
    if (!path) return proto::unexpected{at + path.error()};
    const auto as = at + "require '" + r.name + "':";
    auto text = read_module(*path, r.name);
    if (!text) return proto::unexpected{as + " " + text.error()};
    if (auto err = sandbox.load_module(L, *text, *path, r.name))
      return proto::unexpected{as + " " + *err};
    lua_pop(L, 1);
    found.push_back({*path, std::move(*text), as});
  }
  return found;
}

int lua_require(lua_State* L) {
  std::size_t len = 0;
  const char* raw = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &modules_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &modules_key);
  }
  lua_pushvalue(L, 1);
  const int kind = lua_rawget(L, 2);
  if (kind == LUA_TLIGHTUSERDATA) {
    return luaL_error(L,
                      "require '%s': the module is still loading: it requires itself, through "
                      "the modules it requires (a loop)",
                      raw);
  }
  if (kind != LUA_TNIL) return 1;
  lua_pop(L, 1);
  // The error's text is copied out of its std::string before a Lua call that may raise (and
  // skip the destructor): pushing it may fail for memory.
  char error[1024];
  error[0] = '\0';
  if (auto err = push_module_chunk(L, std::string_view(raw, len))) {
    std::snprintf(error, sizeof error, "%s", err->c_str());
  }
  if (error[0] != '\0') {
    luaL_where(L, 1);  // at the line of the require, as luaL_error would put it
    lua_pushstring(L, error);
    lua_concat(L, 2);
    return lua_error(L);
  }
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, const_cast<char*>(&modules_key));
  lua_rawset(L, 2);  // the chunk is on top again
  // A client script is one coroutine: its modules may wait. A scenario's hooks run side by side:
  // a module waiting at its top level would be "loading" to every other session meanwhile (and
  // for ever to all, were its session to end there), so there it may not.
  if (!lua_sandbox::of(L).module_waits_allowed()) {
    return finish_require(L, lua_pcall(L, 0, 1, 0), 0);
  }
  return finish_require(L, lua_pcallk(L, 0, 1, 0, 0, finish_require), 0);
}

}  // namespace smtpfault::script
