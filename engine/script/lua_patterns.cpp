// The library functions: argument handling and results as Lua 5.4's string library has them,
// on top of pattern_matcher.
#include "script/lua_patterns.hpp"

#include <array>
#include <cstring>
#include <new>
#include <string_view>

#include <lua.hpp>

#include "script/pattern_matcher.hpp"

namespace smtpfault::script {

namespace {

// Each library function keeps the charge function as its first upvalue.
step_charge charge_of(lua_State* L) {
  return step_charge_at(L, 1);
}

// A start position as Lua takes it (1-based, negative from the end, clipped to the first byte),
// as an offset into a subject of len bytes; may be past its end.
std::size_t start_offset(lua_Integer position, std::size_t len) {
  if (position > 0) return static_cast<std::size_t>(position) - 1;
  if (position == 0 || position < -static_cast<lua_Integer>(len)) return 0;
  return len - static_cast<std::size_t>(-position);
}

constexpr std::array<bool, 256> make_specials() {
  std::array<bool, 256> specials{};
  for (const char c : std::string_view("^$*+?.([%-"))
    specials[static_cast<unsigned char>(c)] = true;
  return specials;
}
constexpr std::array<bool, 256> pattern_specials = make_specials();

// find searches for a pattern without any of these characters as plain text.
bool has_specials(const char* p, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) {
    if (pattern_specials[static_cast<unsigned char>(p[i])]) return true;
  }
  return false;
}

// memchr for the first byte, memcmp for the rest: linear, but a huge subject searched for a
// long text that keeps almost matching is not, so this charges too: a step per 32 bytes skipped
// and per candidate compared (and per 32 bytes compared).
const char* find_plain(lua_State* L, step_charge charge, const char* s, std::size_t len,
                       const char* text, std::size_t text_len) {
  if (text_len == 0) return s;
  if (text_len > len) return nullptr;
  const char* const last = s + (len - text_len);  // the last place it may start
  const std::uint64_t candidate_cost = 1 + text_len / 32;
  std::uint64_t steps = 0;
  const char* found = nullptr;
  for (const char* at = s; at <= last;) {
    const auto* candidate =
        static_cast<const char*>(std::memchr(at, text[0], static_cast<std::size_t>(last - at) + 1));
    if (!candidate) {
      steps += static_cast<std::uint64_t>(last - at) / 32;
      break;
    }
    steps += static_cast<std::uint64_t>(candidate - at) / 32 + candidate_cost;
    if (std::memcmp(candidate + 1, text + 1, text_len - 1) == 0) {
      found = candidate;
      break;
    }
    at = candidate + 1;
    if (steps >= pattern_charge_interval) {
      charge(L, steps);
      steps = 0;
    }
  }
  if (steps != 0) charge(L, steps);
  return found;
}

// string.find (find = true) and string.match.
int find_or_match(lua_State* L, bool find) {
  std::size_t len = 0;
  std::size_t pattern_len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const char* p = luaL_checklstring(L, 2, &pattern_len);
  const std::size_t init = start_offset(luaL_optinteger(L, 3, 1), len);
  if (init > len) {
    lua_pushnil(L);
    return 1;
  }
  const step_charge charge = charge_of(L);
  // The look for specials reads the whole pattern: a huge one, found again and again in a
  // loop of few instructions, is work the budget must see.
  if (find && !lua_toboolean(L, 4) && pattern_len >= 32) charge(L, pattern_len / 32);
  if (find && (lua_toboolean(L, 4) || !has_specials(p, pattern_len))) {
    if (const char* at = find_plain(L, charge, s + init, len - init, p, pattern_len)) {
      lua_pushinteger(L, (at - s) + 1);
      lua_pushinteger(L, (at - s) + static_cast<lua_Integer>(pattern_len));
      return 2;
    }
    lua_pushnil(L);
    return 1;
  }
  const bool anchored = *p == '^';
  if (anchored) {
    ++p;
    --pattern_len;
  }
  pattern_matcher matcher(L, s, len, p, pattern_len, charge);
  const char* start = s + init;
  do {
    if (const char* end = matcher.match_at(start, p)) {
      matcher.settle();
      if (!find) return matcher.push_captures(start, end);
      lua_pushinteger(L, (start - s) + 1);
      lua_pushinteger(L, end - s);
      return matcher.push_captures(nullptr, nullptr) + 2;
    }
  } while (start++ < matcher.subject_end() && !anchored);
  matcher.settle();
  lua_pushnil(L);
  return 1;
}

int find(lua_State* L) {
  return find_or_match(L, true);
}

int match(lua_State* L) {
  return find_or_match(L, false);
}

// What a gmatch iterator keeps between calls (in a userdata, beside the subject and pattern
// strings, which keep them alive).
struct gmatch_state {
  pattern_matcher matcher;
  const char* pattern;
  const char* next;        // where the next search starts
  const char* last_match;  // where the previous match ended: no empty match may end there too
};

int gmatch_next(lua_State* L) {
  auto* state = static_cast<gmatch_state*>(lua_touserdata(L, lua_upvalueindex(3)));
  pattern_matcher& matcher = state->matcher;
  matcher.use_state(L);
  for (const char* start = state->next; start <= matcher.subject_end(); ++start) {
    const char* end = matcher.match_at(start, state->pattern);
    if (end && end != state->last_match) {
      state->next = state->last_match = end;
      matcher.settle();
      return matcher.push_captures(start, end);
    }
  }
  matcher.settle();
  return 0;
}

// A '^' at the start of the pattern is an ordinary character here, as in Lua 5.4: an anchor
// would end the iteration after one match.
int gmatch(lua_State* L) {
  std::size_t len = 0;
  std::size_t pattern_len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const char* p = luaL_checklstring(L, 2, &pattern_len);
  std::size_t init = start_offset(luaL_optinteger(L, 3, 1), len);
  if (init > len) init = len + 1;  // nothing to find, and no pointer further out
  const step_charge charge = charge_of(L);
  lua_settop(L, 2);
  void* memory = lua_newuserdatauv(L, sizeof(gmatch_state), 0);
  new (memory)
      gmatch_state{pattern_matcher(L, s, len, p, pattern_len, charge), p, s + init, nullptr};
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

// Adds the replacement for the match s..e; false when the original text was kept (a table or
// function gave false or nil).
bool add_replacement_value(lua_State* L, pattern_matcher& matcher, luaL_Buffer* b, const char* s,
                           const char* e, int replacement_type) {
  switch (replacement_type) {
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      const int args = matcher.push_captures(s, e);
      lua_call(L, args, 1);
      break;
    }
    case LUA_TTABLE:
      matcher.push_capture(0, s, e);
      lua_gettable(L, 3);
      break;
    default: {  // a string or a number
      std::size_t len = 0;
      const char* text = lua_tolstring(L, 3, &len);
      matcher.add_replacement(b, text, len, s, e);
      return true;
    }
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return true;
}

int gsub(lua_State* L) {
  std::size_t len = 0;
  std::size_t pattern_len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const char* p = luaL_checklstring(L, 2, &pattern_len);
  const int replacement_type = lua_type(L, 3);
  const lua_Integer max_matches = luaL_optinteger(L, 4, static_cast<lua_Integer>(len) + 1);
  luaL_argexpected(L,
                   replacement_type == LUA_TNUMBER || replacement_type == LUA_TSTRING ||
                       replacement_type == LUA_TFUNCTION || replacement_type == LUA_TTABLE,
                   3, "string/function/table");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const bool anchored = *p == '^';
  if (anchored) {
    ++p;
    --pattern_len;
  }
  pattern_matcher matcher(L, s, len, p, pattern_len, charge_of(L));
  const char* last_match = nullptr;
  lua_Integer matches = 0;
  bool changed = false;
  while (matches < max_matches) {
    const char* end = matcher.match_at(s, p);
    if (end && end != last_match) {
      ++matches;
      changed = add_replacement_value(L, matcher, &b, s, end, replacement_type) || changed;
      s = last_match = end;
    } else if (s < matcher.subject_end()) {
      luaL_addchar(&b, *s++);
    } else {
      break;
    }
    if (anchored) break;
  }
  matcher.settle();
  if (changed) {
    luaL_addlstring(&b, s, static_cast<std::size_t>(matcher.subject_end() - s));
    luaL_pushresult(&b);
  } else {
    lua_pushvalue(L, 1);  // the very string given
  }
  lua_pushinteger(L, matches);
  return 2;
}

}  // namespace

void install_bounded_patterns(lua_State* L, int table_index, step_charge charge) {
  table_index = lua_absindex(L, table_index);
  const luaL_Reg functions[] = {
      {"find", find}, {"match", match}, {"gmatch", gmatch}, {"gsub", gsub}};
  for (const auto& f : functions) {
    push_step_charge(L, charge);
    lua_pushcclosure(L, f.func, 1);
    lua_setfield(L, table_index, f.name);
  }
}

}  // namespace smtpfault::script
