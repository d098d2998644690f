#include "script/counted_library.hpp"

#include <cstring>

#include <lua.hpp>

namespace smtpfault::script {
namespace {

// Upvalues of every wrapper: Lua's own function, the charge, and the name ("table.insert") its
// argument errors give.
step_charge charge_of(lua_State* L) {
  return step_charge_at(L, 2);
}

int call_original(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  if (lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0) == LUA_OK) return lua_gettop(L);
  // Called from here, Lua's function can name neither itself nor the script's line: an error
  // the wrapper did not check for first gets both here.
  const char* message = lua_tostring(L, -1);
  if (message && std::strstr(message, "to '?'")) {
    luaL_where(L, 1);
    lua_pushfstring(L, "to '%s'", lua_tostring(L, lua_upvalueindex(3)));
    luaL_gsub(L, message, "to '?'", lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

// The elements from `from` to `to` (none when to < from), without overflow.
std::uint64_t span(lua_Integer from, lua_Integer to) {
  if (to < from) return 0;
  return static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(from) + 1;
}

// Lua's checks of the arguments, made here where an error names the function and the line.
void check_table(lua_State* L) {
  if (lua_type(L, 1) == LUA_TTABLE) return;
  if (!lua_getmetatable(L, 1)) luaL_typeerror(L, 1, "table");
  lua_pop(L, 1);  // a value with a metatable: Lua's function judges its metamethods
}

void check_position(lua_State* L, bool ok) {
  if (!ok) luaL_argerror(L, 2, "position out of bounds");
}

int counted_rep(lua_State* L) {
  std::size_t length = 0;
  std::size_t separator = 0;
  luaL_checklstring(L, 1, &length);
  luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &separator);
  // Any number of empty copies is "": the answer, without the loop.
  if (length + separator == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  return call_original(L);
}

// table.move(a1, f, e, t [, a2]) walks e - f + 1 elements.
int counted_move(lua_State* L) {
  check_table(L);
  const lua_Integer first = luaL_checkinteger(L, 2);
  const lua_Integer last = luaL_checkinteger(L, 3);
  luaL_checkinteger(L, 4);
  charge_of(L)(L, span(first, last));
  return call_original(L);
}

// table.insert(t, pos, v) shifts the elements from pos to #t up by one.
int counted_insert(lua_State* L) {
  check_table(L);
  if (lua_gettop(L) == 3) {
    const lua_Integer position = luaL_checkinteger(L, 2);
    const lua_Integer size = luaL_len(L, 1);
    check_position(L, position >= 1 && position - 1 <= size);  // 1 to #t + 1
    charge_of(L)(L, span(position, size));
  }
  return call_original(L);
}

// table.remove(t [, pos]) shifts the elements from pos to #t down by one.
int counted_remove(lua_State* L) {
  check_table(L);
  const lua_Integer size = luaL_len(L, 1);
  const lua_Integer position = luaL_optinteger(L, 2, size);
  // 1 to #t + 1, or #t itself (0 for an empty table).
  check_position(L, position == size || (position >= 1 && position - 1 <= size));
  charge_of(L)(L, span(position, size));
  return call_original(L);
}

void wrap(lua_State* L, const char* library, const char* name, lua_CFunction wrapper,
          step_charge charge) {
  lua_getglobal(L, library);
  lua_getfield(L, -1, name);
  push_step_charge(L, charge);
  lua_pushfstring(L, "%s.%s", library, name);
  lua_pushcclosure(L, wrapper, 3);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

}  // namespace

void install_counted_library(lua_State* L, step_charge charge) {
  wrap(L, "string", "rep", counted_rep, charge);
  wrap(L, "table", "move", counted_move, charge);
  wrap(L, "table", "insert", counted_insert, charge);
  wrap(L, "table", "remove", counted_remove, charge);
}

}  // namespace smtpfault::script
