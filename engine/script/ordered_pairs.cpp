#include "script/ordered_pairs.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <utility>

#include <lua.hpp>

namespace smtpfault::script {

namespace {

// What a key is sorted by. A string's bytes stay valid while the table holds the key.
struct sort_key {
  lua_Integer integer;  // an integer key, or a boolean's 0 or 1
  lua_Number number;    // a float key
  const char* text;     // a string key
  std::size_t length;
  lua_Integer slot;    // its place in Lua's own order (from 1): the tie-break
  unsigned char rank;  // 0 number, 1 string, 2 boolean, 3 anything else
  bool is_integer;
};

sort_key describe(lua_State* L, int index, lua_Integer slot) {
  sort_key k{0, 0, nullptr, 0, slot, 3, false};
  switch (lua_type(L, index)) {
    case LUA_TNUMBER:
      k.rank = 0;
      k.is_integer = lua_isinteger(L, index);
      if (k.is_integer) {
        k.integer = lua_tointeger(L, index);
      } else {
        k.number = lua_tonumber(L, index);
      }
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

constexpr lua_Number two_to_63 = 9223372036854775808.0;

// i < f, exactly (as Lua compares them; a double holds no integer beyond 2^53 exactly, so the
// float is rounded to the integers instead): i < f when i < ceil(f).
bool integer_below_float(lua_Integer i, lua_Number f) {
  const lua_Number c = std::ceil(f);
  if (c >= two_to_63) return true;
  if (c < -two_to_63) return false;
  return i < static_cast<lua_Integer>(c);
}

// f < i when floor(f) < i.
bool float_below_integer(lua_Number f, lua_Integer i) {
  const lua_Number fl = std::floor(f);
  if (fl >= two_to_63) return false;
  if (fl < -two_to_63) return true;
  return static_cast<lua_Integer>(fl) < i;
}

bool number_below(const sort_key& a, const sort_key& b) {
  if (a.is_integer && b.is_integer) return a.integer < b.integer;
  if (!a.is_integer && !b.is_integer) return a.number < b.number;
  return a.is_integer ? integer_below_float(a.integer, b.number)
                      : float_below_integer(a.number, b.integer);
}

// A strict order on all keys: two keys are never equal in it (different keys of a rank differ
// in value, and keys with no order of their own keep Lua's).
bool earlier(const sort_key& a, const sort_key& b) {
  if (a.rank != b.rank) return a.rank < b.rank;
  switch (a.rank) {
    case 0:
      if (number_below(a, b)) return true;
      if (number_below(b, a)) return false;
      break;
    case 1: {
      const int c = std::memcmp(a.text, b.text, std::min(a.length, b.length));
      if (c != 0) return c < 0;
      if (a.length != b.length) return a.length < b.length;
      break;
    }
    case 2:
      if (a.integer != b.integer) return a.integer < b.integer;
      break;
    default:
      break;
  }
  return a.slot < b.slot;
}

// The iterator over a sorted snapshot: upvalue 1 the keys in order, 2 the place of the key it
// last handed out, 3 the table. As with next, f(t, k) gives the key after k (the loop passes
// the last one, found at once; another is looked for) and f(t, nil) the first; a key whose
// value was cleared meanwhile is passed over. The table is the upvalue's, whatever is passed.
int ordered_next(lua_State* L) {
  const int keys = lua_upvalueindex(1);
  lua_settop(L, 2);
  lua_Integer at = 0;
  if (!lua_isnil(L, 2)) {
    at = lua_tointeger(L, lua_upvalueindex(2));
    const bool last = at > 0 && lua_rawgeti(L, keys, at) != LUA_TNIL && lua_rawequal(L, -1, 2);
    lua_settop(L, 2);
    if (!last) {
      at = 0;
      const auto n = static_cast<lua_Integer>(lua_rawlen(L, keys));
      for (lua_Integer i = 1; i <= n && at == 0; ++i) {
        lua_rawgeti(L, keys, i);
        if (lua_rawequal(L, -1, 2)) at = i;
        lua_pop(L, 1);
      }
      if (at == 0) return luaL_error(L, "invalid key to 'next'");  // Lua's own words
    }
  }
  for (;;) {
    ++at;
    if (lua_rawgeti(L, keys, at) == LUA_TNIL) return 1;  // the nil that ends the loop
    lua_pushvalue(L, -1);
    if (lua_rawget(L, lua_upvalueindex(3)) != LUA_TNIL) {
      lua_pushinteger(L, at);
      lua_replace(L, lua_upvalueindex(2));
      return 2;
    }
    lua_pop(L, 2);
  }
}

int after_pairs_metamethod(lua_State*, int, lua_KContext) {
  return 3;
}

// How many keys the table at index 1 has, and whether Lua's own walk meets them in order.
std::pair<lua_Integer, bool> count_keys(lua_State* L) {
  lua_Integer count = 0;
  bool in_order = true;
  sort_key previous{};
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    const sort_key key = describe(L, -1, ++count);
    if (count > 1 && in_order && !earlier(previous, key)) in_order = false;
    previous = key;
  }
  return {count, in_order};
}

// Pushes the keys of the table at index 1, sorted, in a new array. The stack must hold the
// table alone: the keys in Lua's order go to index 2 on the way.
void push_sorted_keys(lua_State* L, lua_Integer count, step_charge charge) {
  const int hint = static_cast<int>(std::min<lua_Integer>(count, INT_MAX));
  lua_createtable(L, hint, 0);  // 2: the keys in Lua's order
  // Lua's memory, not a std::vector: a memory error below unwinds with longjmp.
  auto* sorted = static_cast<sort_key*>(lua_newuserdatauv(L, count * sizeof(sort_key), 0));
  lua_Integer taken = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    if (taken == count) continue;  // (the table cannot have grown in between)
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, ++taken);
    sorted[taken - 1] = describe(L, -1, taken);
  }
  std::uint64_t compared = 0;
  std::sort(sorted, sorted + taken, [&compared](const sort_key& a, const sort_key& b) {
    ++compared;
    return earlier(a, b);
  });
  charge(L, compared);
  lua_createtable(L, hint, 0);
  for (lua_Integer i = 0; i < taken; ++i) {
    lua_rawgeti(L, 2, sorted[i].slot);
    lua_rawseti(L, -2, i + 1);
  }
}

// Upvalue 1: the charge function; 2: Lua's next.
int ordered_pairs(lua_State* L) {
  if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
    lua_pushvalue(L, 1);
    lua_callk(L, 1, 3, 0, after_pairs_metamethod);
    return 3;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  const auto charge = step_charge_at(L, 1);
  // First the keys as Lua walks them: if they come in order already (an array), Lua's next
  // does, with nothing to keep.
  const auto [count, in_order] = count_keys(L);
  charge(L, static_cast<std::uint64_t>(count));
  if (in_order) {
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
  }
  push_sorted_keys(L, count, charge);
  lua_pushinteger(L, 0);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, ordered_next, 3);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

}  // namespace

void install_ordered_pairs(lua_State* L, step_charge charge) {
  push_step_charge(L, charge);
  lua_getglobal(L, "next");
  lua_pushcclosure(L, ordered_pairs, 2);
  lua_setglobal(L, "pairs");
}

}  // namespace smtpfault::script
