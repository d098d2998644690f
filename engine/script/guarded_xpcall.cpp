#include "script/guarded_xpcall.hpp"

#include <lua.hpp>

namespace smtpfault::script {
namespace {

// Upvalues: the script's handler, then the stopping test as light userdata.
int handler_unless_stopping(lua_State* L) {
  auto stopping = reinterpret_cast<run_stopping>(lua_touserdata(L, lua_upvalueindex(2)));
  if (stopping(L)) return 1;  // the stop's own message goes on as it is
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

// Below the results sit the called function and the guarded handler.
constexpr int below_results = 2;

int finish_xpcall(lua_State* L, int status, lua_KContext) {
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;  // false, the handler's answer
  }
  return lua_gettop(L) - below_results;  // true, the function's results
}

int guarded_xpcall(lua_State* L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  const int args = lua_gettop(L) - 2;
  lua_pushvalue(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, handler_unless_stopping, 2);
  lua_replace(L, 2);  // f, guarded handler, args...
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);  // f, guarded handler, true, f, args...
  const int status = lua_pcallk(L, args, LUA_MULTRET, 2, 0, finish_xpcall);
  return finish_xpcall(L, status, 0);
}

}  // namespace

void install_guarded_xpcall(lua_State* L, run_stopping stopping) {
  lua_pushlightuserdata(L, reinterpret_cast<void*>(stopping));
  lua_pushcclosure(L, guarded_xpcall, 1);
  lua_setglobal(L, "xpcall");
}

}  // namespace smtpfault::script
