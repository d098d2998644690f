// The C half of the `smtp` table: what needs the host (time, the seeded random source, the
// session's transcript, yielding to the event loop) or is awkward in Lua (CIDR matching).
#include <arpa/inet.h>
#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "proto/bounded_text.hpp"
#include "proto/glob.hpp"
#include "proto/reply.hpp"
#include "script/lua_bridge.hpp"
#include "script/scenario.hpp"

namespace smtpfault::script {

namespace {

scenario& owner(lua_State* L) {
  return *static_cast<scenario*>(lua_touserdata(L, lua_upvalueindex(1)));
}

char sleep_marker;

// "bad argument #2 to smtp.random (...)": named by the API's own name, which Lua cannot tell
// for a call made while the script loads ("to '?'").
int bad_argument(lua_State* L, int arg, const char* function, const char* why) {
  return luaL_error(L, "bad argument #%d to smtp.%s (%s)", arg, function, why);
}

lua_Integer whole_number(lua_State* L, int arg, const char* function) {
  int ok = 0;
  const lua_Integer v = lua_type(L, arg) == LUA_TNUMBER ? lua_tointegerx(L, arg, &ok) : 0;
  if (!ok) bad_argument(L, arg, function, "a whole number expected");
  return v;
}

int api_sleep(lua_State* L) {
  // A number, as smtp.delay takes it: "1" is a mistake there and here alike.
  if (lua_type(L, 1) != LUA_TNUMBER) return bad_argument(L, 1, "sleep", "number expected");
  const lua_Number secs = lua_tonumber(L, 1);
  if (!(secs >= 0)) return bad_argument(L, 1, "sleep", "seconds must be >= 0");
  if (std::isinf(secs)) return bad_argument(L, 1, "sleep", "seconds must be finite");
  // As smtp.delay: the session holds its connection meanwhile.
  if (secs > 86400) return bad_argument(L, 1, "sleep", "seconds must be at most 86400, a day");
  if (!lua_isyieldable(L)) {
    // In a hook, what cannot yield is a function a C function called.
    return luaL_error(L, owner(L).hook_running()
                             ? "smtp.sleep cannot pause in a function that Lua's library calls "
                               "(a table.sort comparator, a string.gsub callback, a "
                               "metamethod) or at a module's top level (require): sleep in the "
                               "hook's own code"
                             : "smtp.sleep can only be used inside hooks");
  }
  // A yield there would only return to the script's own resume, with the marker as its value.
  if (owner(L).hook_running() && L != owner(L).hook_thread()) {
    return luaL_error(L,
                      "smtp.sleep cannot pause the session from a coroutine the scenario made "
                      "(coroutine.create, coroutine.wrap): sleep in the hook's own code");
  }
  lua_pushlightuserdata(L, &sleep_marker);
  lua_pushnumber(L, secs);
  return lua_yield(L, 2);
}

// smtp.ehlo_keywords(): the list smtp.extensions{...} would replace, to add to or reorder.
int api_ehlo_keywords(lua_State* L) {
  const auto keywords = owner(L).ehlo_keywords();
  if (!keywords) return luaL_error(L, "smtp.ehlo_keywords can only be used inside hooks");
  lua_createtable(L, static_cast<int>(keywords->size()), 0);
  for (std::size_t i = 0; i < keywords->size(); ++i) {
    lua_pushlstring(L, (*keywords)[i].data(), (*keywords)[i].size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  return 1;
}

// For expect(): where the scenario sets a key, to report a mistake in it on its own line.
int api_key_place(lua_State* L) {
  const auto place = owner(L).key_place(L, luaL_checkstring(L, 1));
  if (!place) return 0;
  lua_pushlstring(L, place->data(), place->size());
  return 1;
}

// For expect(): expectations are read once, when the scenario has loaded.
int api_hook_running(lua_State* L) {
  lua_pushboolean(L, owner(L).hook_running());
  return 1;
}

// smtp._made(name): every action the library makes says so, for a hook that forgets to return it.
int api_action_made(lua_State* L) {
  owner(L).note_action_made(L, luaL_optstring(L, 1, "action"));
  return 0;
}

int api_now(lua_State* L) {
  lua_pushnumber(L, owner(L).now());
  return 1;
}

// Like math.random: () -> [0,1), (m) -> [1,m], (m, n) -> [m,n].
int api_random(lua_State* L) {
  int n = lua_gettop(L);
  // As math.random(0): an integer with all its bits random.
  if (n == 1 && lua_isinteger(L, 1) && lua_tointeger(L, 1) == 0) {
    lua_pushinteger(L, static_cast<lua_Integer>(owner(L).next_bits()));
    return 1;
  }
  double r = owner(L).next_random();
  if (n == 0) {
    lua_pushnumber(L, r);
    return 1;
  }
  lua_Integer lo = 1, hi = whole_number(L, 1, "random");
  if (n >= 2) {
    lo = hi;
    hi = whole_number(L, 2, "random");
  }
  if (lo > hi) bad_argument(L, n >= 2 ? 2 : 1, "random", "interval is empty");
  // In unsigned arithmetic: hi - lo may not fit a lua_Integer (math.mininteger, maxinteger).
  const auto ulo = static_cast<std::uint64_t>(lo);
  const std::uint64_t span = static_cast<std::uint64_t>(hi) - ulo;
  if (span < (std::uint64_t{1} << 53)) {  // r * (span + 1) is exact, and below span + 1
    const auto offset = static_cast<std::uint64_t>(r * static_cast<double>(span + 1));
    lua_pushinteger(L, static_cast<lua_Integer>(ulo + offset));
    return 1;
  }
  // Wider than a double's precision: random bits of the span's width, drawn again when past
  // it, so that every value is as likely.
  std::uint64_t mask = span;
  for (int shift = 1; shift < 64; shift *= 2)
    mask |= mask >> shift;
  std::uint64_t v = 0;
  do {
    v = owner(L).next_bits() & mask;
  } while (v > span);
  lua_pushinteger(L, static_cast<lua_Integer>(ulo + v));
  return 1;
}

int api_chance(lua_State* L) {
  if (lua_type(L, 1) != LUA_TNUMBER) return bad_argument(L, 1, "chance", "number expected");
  const lua_Number p = lua_tonumber(L, 1);
  // Past 1 or below 0 it would be a certainty in disguise: a slip (a percentage?), not a chance.
  if (!(p >= 0 && p <= 1)) return bad_argument(L, 1, "chance", "a probability from 0 to 1");
  lua_pushboolean(L, owner(L).next_random() < p);
  return 1;
}

// What smtp.log writes for the value at i: tostring's text, but a table, function or the like
// without __tostring by its type (or __name) alone. Its address differs from run to run, and
// the same seed must give the same transcript.
void push_log_text(lua_State* L, int i) {
  const int type = lua_type(L, i);
  const bool has_address = type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TUSERDATA ||
                           type == LUA_TTHREAD || type == LUA_TLIGHTUSERDATA;
  if (!has_address || luaL_getmetafield(L, i, "__tostring") != LUA_TNIL) {
    if (has_address) lua_pop(L, 1);  // the __tostring found: luaL_tolstring calls it
    luaL_tolstring(L, i, nullptr);
    return;
  }
  const int name = luaL_getmetafield(L, i, "__name");
  if (name == LUA_TSTRING) return;
  if (name != LUA_TNIL) lua_pop(L, 1);
  lua_pushstring(L, luaL_typename(L, i));
}

int api_log(lua_State* L) {
  // A Lua buffer: a __tostring that fails must not skip a C++ destructor.
  const int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) luaL_addchar(&b, ' ');
    push_log_text(L, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  std::size_t len = 0;
  const char* text = lua_tolstring(L, -1, &len);
  // One transcript line, not a dump; the length it gives when cut is the script's own text's.
  owner(L).log_from_script("script: " + proto::bounded_text(std::string_view(text, len)));
  return 0;
}

struct ip_bytes {
  unsigned char b[16];
  int len = 0;          // 4 or 16
  bool mapped = false;  // written as an IPv4-mapped IPv6 address
};

bool parse_ip(const std::string& text, ip_bytes& out) {
  if (inet_pton(AF_INET, text.c_str(), out.b) == 1) {
    out.len = 4;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out.b) == 1) {
    out.len = 16;
    // An IPv4-mapped address compares as IPv4.
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out.b, mapped, 12) == 0) {
      std::memmove(out.b, out.b + 12, 4);
      out.len = 4;
      out.mapped = true;
    }
    return true;
  }
  return false;
}

bool in_network(const ip_bytes& ip, const std::string& cidr, bool& valid) {
  auto slash = cidr.find('/');
  ip_bytes net;
  valid = parse_ip(cidr.substr(0, slash), net);
  if (!valid) return false;
  // A v4-mapped network ("::ffff:10.0.0.0/104") counts its prefix in IPv6 bits.
  const int width = net.mapped ? 128 : net.len * 8;
  int bits = width;
  if (slash != std::string::npos) {
    const std::string prefix = cidr.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 3 ||
        prefix.find_first_not_of("0123456789") != std::string::npos) {
      return valid = false;
    }
    bits = std::stoi(prefix);
    if (bits > width) return valid = false;
  }
  if (net.mapped) bits = bits > 96 ? bits - 96 : 0;
  if (net.len != ip.len) return false;
  for (int i = 0; i < bits; ++i) {
    int byte = i / 8, mask = 0x80 >> (i % 8);
    if ((ip.b[byte] & mask) != (net.b[byte] & mask)) return false;
  }
  return true;
}

// 0 = no match, 1 = match, -1 = not a network. Takes a C string: no C++ object may be alive
// when a Lua error unwinds (longjmp) through a C function.
int match_network(const ip_bytes& ip, const char* cidr) {
  bool valid = true;
  bool hit = in_network(ip, cidr, valid);
  return !valid ? -1 : hit ? 1 : 0;
}

// smtp.ip_in(ip, "10.0.0.0/8") or smtp.ip_in(ip, {"10.0.0.0/8", "::1"})
int api_ip_in(lua_State* L) {
  ip_bytes ip;
  const char* text = luaL_checkstring(L, 1);
  if (lua_type(L, 2) != LUA_TSTRING) luaL_checktype(L, 2, LUA_TTABLE);
  if (!parse_ip(text, ip)) {
    // Not false: in a relay rule a silent false would make every client an outsider. The
    // likely slip is s.client, which has the port too.
    const std::string_view given(text);
    const bool with_port =
        given.find(':') != std::string_view::npos && given.find('.') != std::string_view::npos;
    return luaL_error(L, "bad argument #1 to smtp.ip_in ('%s' is not an IP address%s)", text,
                      with_port ? "; s.client has the port too, s.client_ip is the address" : "");
  }
  const bool single = lua_type(L, 2) == LUA_TSTRING;
  const lua_Integer n = single ? 1 : static_cast<lua_Integer>(lua_rawlen(L, 2));
  for (lua_Integer i = 1; !single && i <= n; ++i) {
    if (lua_rawgeti(L, 2, i) != LUA_TSTRING) {
      return luaL_error(L, "smtp.ip_in: network #%d is a %s, not a string", static_cast<int>(i),
                        luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  for (lua_Integer i = 1; i <= n; ++i) {
    if (single) {
      lua_pushvalue(L, 2);
    } else {
      lua_rawgeti(L, 2, i);
    }
    const char* net = lua_tostring(L, -1);
    int m = net ? match_network(ip, net) : -1;
    if (m < 0) {
      return luaL_error(L, "smtp.ip_in: '%s' is not an address or CIDR network",
                        net ? net : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    if (m == 1) {
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

// Calls the Lua function in its upvalue. Through this C function, a call in tail position
// (`return smtp.reply(...)`) keeps the scenario's frame, so a check inside lua/smtp*.lua can
// still name the scenario's line.
int keep_caller_frame(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0,
            [](lua_State* K, int, lua_KContext) { return lua_gettop(K); });
  return lua_gettop(L);
}

// Wraps the value on top of the stack when it is a Lua function.
void wrap_if_lua_function(lua_State* L) {
  if (lua_type(L, -1) == LUA_TFUNCTION && !lua_iscfunction(L, -1)) {
    lua_pushcclosure(L, keep_caller_frame, 1);
  }
}

// Wraps the public Lua functions of the table at index t.
void wrap_lua_functions(lua_State* L, int t) {
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_tostring(L, -2)[0] != '_') {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      wrap_if_lua_function(L);
      lua_rawset(L, t);  // replacing an existing field while traversing is allowed
    } else {
      lua_pop(L, 1);
    }
  }
}

// smtp._default_text(code): the one table of usual reply texts, shared with the host.
int api_default_text(lua_State* L) {
  const auto text = proto::default_reply_text(static_cast<int>(luaL_checkinteger(L, 1)));
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

// smtp._glob_match(text, pattern): the glob the API's filters and rules use, so that
// smtp.matches cannot come to mean something else.
int api_glob_match(lua_State* L) {
  std::size_t tn = 0, pn = 0;
  const char* text = luaL_checklstring(L, 1, &tn);
  const char* pattern = luaL_checklstring(L, 2, &pn);
  lua_pushboolean(L, proto::glob_match({pattern, pn}, {text, tn}));
  return 1;
}

}  // namespace

void* sleep_sentinel() {
  return &sleep_marker;
}

void keep_caller_frames(lua_State* L) {
  lua_getglobal(L, "smtp");
  wrap_lua_functions(L, -1);
  lua_pushstring(L, "_action_metatable");
  lua_rawget(L, -2);
  if (lua_istable(L, -1)) {
    wrap_lua_functions(L, -1);
    lua_pushvalue(L, -1);
    remember_action_metatable(L);
  }
  lua_pop(L, 2);
  lua_getglobal(L, "expect");
  wrap_if_lua_function(L);
  lua_setglobal(L, "expect");
}

void register_c_api(lua_State* L, scenario* sc) {
  const luaL_Reg functions[] = {{"sleep", api_sleep},
                                {"_hook_running", api_hook_running},
                                {"_made", api_action_made},
                                {"_key_place", api_key_place},
                                {"now", api_now},
                                {"ehlo_keywords", api_ehlo_keywords},
                                {"random", api_random},
                                {"chance", api_chance},
                                {"log", api_log},
                                {"ip_in", api_ip_in},
                                {"_default_text", api_default_text},
                                {"_glob_match", api_glob_match},
                                {nullptr, nullptr}};
  lua_newtable(L);
  lua_pushlightuserdata(L, sc);
  luaL_setfuncs(L, functions, 1);
  lua_setglobal(L, "smtp");
}

}  // namespace smtpfault::script
