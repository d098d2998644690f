// Fields of the table on top of a Lua stack, set by the host with raw sets: a script may put a
// metatable on a table it was given, and the host must never run one outside a protected call.
// The key goes first, so the value needs no rotation under it.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <lua.hpp>

namespace smtpfault::script {

inline void set_string(lua_State* L, const char* key, std::string_view v) {
  lua_pushstring(L, key);
  lua_pushlstring(L, v.data(), v.size());
  lua_rawset(L, -3);
}

inline void set_integer(lua_State* L, const char* key, lua_Integer v) {
  lua_pushstring(L, key);
  lua_pushinteger(L, v);
  lua_rawset(L, -3);
}

inline void set_bool(lua_State* L, const char* key, bool v) {
  lua_pushstring(L, key);
  lua_pushboolean(L, v);
  lua_rawset(L, -3);
}

// The global `params`: values a script was given (--param, scenario_params), as strings.
inline void set_params_global(lua_State* L, const std::map<std::string, std::string>& params) {
  lua_createtable(L, 0, static_cast<int>(params.size()));
  for (const auto& [k, v] : params)
    set_string(L, k.c_str(), v);
  lua_setglobal(L, "params");
}

}  // namespace smtpfault::script
