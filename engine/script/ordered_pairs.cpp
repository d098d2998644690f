#include "script/ordered_pairs.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include <lua.hpp>

namespace smtpfault::script {

namespace {

// What a key is sorted by. A string's bytes stay valid while the table of keys holds it.
struct sort_key {
  int rank;  // 0 number, 1 string, 2 boolean, 3 anything else
  bool is_integer;
  lua_Integer integer;
  lua_Number number;
  const char* text;
  std::size_t length;
  lua_Integer slot;  // where the key waits in the table of keys
};

sort_key describe(lua_State* L, int index, lua_Integer slot) {
  sort_key k{3, false, 0, 0, nullptr, 0, slot};
  switch (lua_type(L, index)) {
    case LUA_TNUMBER:
      k.rank = 0;
      k.is_integer = lua_isinteger(L, index);
      k.integer = lua_tointeger(L, index);
      k.number = lua_tonumber(L, index);
      break;
    case LUA_TSTRING:  // a string key: lua_tolstring changes nothing (a number key it would)
      k.rank = 1;
      k.text = lua_tolstring(L, index, &k.length);
      break;
    case LUA_TBOOLEAN:
      k.rank = 2;
      k.integer = lua_toboolean(L, index);
      break;
    default:
      break;
  }
  return k;
}

bool earlier(const sort_key& a, const sort_key& b) {
  if (a.rank != b.rank) return a.rank < b.rank;
  switch (a.rank) {
    case 0:
      return a.is_integer && b.is_integer ? a.integer < b.integer : a.number < b.number;
    case 1: {
      const int c = std::memcmp(a.text, b.text, std::min(a.length, b.length));
      return c != 0 ? c < 0 : a.length < b.length;
    }
    case 2:
      return a.integer < b.integer;
    default:
      return false;  // no order of their own: the stable sort keeps Lua's
  }
}

// The iterator: upvalue 1 the keys in order, upvalue 2 how many were handed out. A key whose
// value was cleared during the loop (allowed, as with next) is passed over.
int ordered_next(lua_State* L) {
  lua_Integer at = lua_tointeger(L, lua_upvalueindex(2));
  for (;;) {
    ++at;
    if (lua_rawgeti(L, lua_upvalueindex(1), at) == LUA_TNIL) {
      lua_pushinteger(L, at - 1);
      lua_replace(L, lua_upvalueindex(2));
      return 1;  // the nil: the loop ends
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 1) != LUA_TNIL) {
      lua_pushinteger(L, at);
      lua_replace(L, lua_upvalueindex(2));
      return 2;
    }
    lua_pop(L, 2);
  }
}

int ordered_pairs(lua_State* L) {
  if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    ++count;
  }
  const int hint = static_cast<int>(std::min<lua_Integer>(count, INT_MAX));
  lua_createtable(L, hint, 0);  // 2: the keys as next gives them
  // Lua's memory, not a std::vector: a memory error in the calls below unwinds with longjmp.
  auto* keys = static_cast<sort_key*>(lua_newuserdatauv(L, count * sizeof(sort_key), 0));  // 3
  lua_Integer taken = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    if (taken == count) continue;  // (the table cannot have grown in between)
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, ++taken);
    keys[taken - 1] = describe(L, -1, taken);
  }
  std::stable_sort(keys, keys + taken, earlier);
  lua_createtable(L, hint, 0);  // 4: the keys in order
  for (lua_Integer i = 0; i < taken; ++i) {
    lua_rawgeti(L, 2, keys[i].slot);
    lua_rawseti(L, 4, i + 1);
  }
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, ordered_next, 2);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

}  // namespace

void install_ordered_pairs(lua_State* L) {
  lua_pushcfunction(L, ordered_pairs);
  lua_setglobal(L, "pairs");
}

}  // namespace smtpfault::script
