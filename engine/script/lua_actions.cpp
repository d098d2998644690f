// Reading an action table returned by a hook into a fault::action. The field names are the ones
// lua/smtp.lua writes; a table built by hand with a typo gets an error naming the field.
#include <lua.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <string_view>

#include "proto/duration.hpp"
#include "proto/reply.hpp"
#include "script/lua_bridge.hpp"

namespace smtpfault::script {

namespace {

using fault::millis;

// What one action may carry out of the sandbox: its strings are copied outside the memory limit,
// and a table of 1,000 references to one 1 MB string would otherwise become a 1 GB reply.
constexpr std::size_t most_action_octets = std::size_t{16} << 20;
// Each list item costs at least this (a reply line's code, space and CRLF).
constexpr std::size_t octets_per_item = 6;
constexpr std::size_t longest_name = 256;
constexpr double longest_wait = 86400;  // seconds, as smtp.delay and the rest allow

struct reader {
  lua_State* L;
  int idx;
  double scale;
  std::string error;
  std::size_t octets = 0;  // taken out of the table so far, with the nested ones'

  bool ok() const { return error.empty(); }

  // Counts n octets copied; past most_action_octets, the action is refused.
  void take(std::size_t n) {
    octets += n;
    if (octets > most_action_octets && error.empty()) {
      error =
          "returned an action whose text is more than 16 MiB (reply lines, raw octets and the "
          "rest together; a list may name one string many times, each copy counts)";
    }
  }

  int field(const char* key, int want) {
    // Raw: an action's metatable has methods named like its fields (delay, split, ...).
    lua_pushstring(L, key);
    lua_rawget(L, idx);
    int t = lua_type(L, -1);
    if (t != LUA_TNIL && t != want && error.empty()) {
      error = std::string("returned an action whose field '") + key + "' is a " +
              lua_typename(L, t) + ", not a " + lua_typename(L, want);
    }
    return t == want ? t : LUA_TNIL;
  }
  std::optional<std::string> str(const char* key) {
    std::optional<std::string> out;
    if (field(key, LUA_TSTRING) == LUA_TSTRING) {
      std::size_t n = 0;
      const char* s = lua_tolstring(L, -1, &n);
      take(n);
      if (ok()) out.emplace(s, n);
    }
    lua_pop(L, 1);
    return out;
  }
  std::optional<double> num(const char* key) {
    std::optional<double> out;
    if (field(key, LUA_TNUMBER) == LUA_TNUMBER) out = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return out;
  }
  millis seconds(const char* key) {
    auto v = num(key);
    if (!v) return millis(0);
    if (!(*v >= 0 && *v <= longest_wait)) {
      if (error.empty()) {
        error = std::string("returned an action whose ") + key +
                " is not from 0 to 86400 seconds (smtp.hang() never answers)";
      }
      return millis(0);
    }
    return proto::millis_from_seconds(*v * scale, true);  // a delay asked for is never 0 ms
  }
  std::vector<std::string> strings(const char* key) {
    std::vector<std::string> out;
    if (field(key, LUA_TTABLE) == LUA_TTABLE) {
      lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));  // no __len
      for (lua_Integer i = 1; i <= n; ++i) {
        lua_rawgeti(L, -1, i);
        std::size_t len = 0;  // whole: a NUL inside must be seen, not cut the line short
        const char* s = lua_tolstring(L, -1, &len);
        take(len + octets_per_item);
        if (s && ok()) out.emplace_back(s, len);
        lua_pop(L, 1);
        if (!ok()) break;
      }
    }
    lua_pop(L, 1);
    return out;
  }
};

// What smtp.reply checks, for a table built or changed by hand: a reply the client can read as
// one, never a code cast from 1e300 or a line that smuggles in a second reply.
std::optional<proto::reply> read_reply(reader& r) {
  auto code = r.num("code");
  if (!code) return std::nullopt;
  if (!(*code >= 100 && *code <= 599) || *code != std::floor(*code)) {
    char text[64];
    std::snprintf(text, sizeof text, "%.14g", *code);
    r.error = std::string("returned an action whose code is ") + text +
              ": a reply code from 100 to 599 expected (smtp.raw sends any octets)";
    return std::nullopt;
  }
  proto::reply rep;
  rep.code = static_cast<int>(*code);
  rep.enhanced = r.str("enhanced").value_or("");
  if (!rep.enhanced.empty() && !proto::is_enhanced_code(rep.enhanced)) {
    r.error = "returned an action whose enhanced code is not one like \"4.7.1\"";
    return std::nullopt;
  }
  rep.lines = r.strings("lines");
  for (const auto& line : rep.lines) {
    if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      r.error =
          "returned an action whose reply text holds CR, LF or NUL (smtp.raw sends any "
          "octets)";
      return std::nullopt;
    }
  }
  // A code alone ({code = 550}, a table of one's own) gets the code's usual text.
  if (rep.lines.empty()) rep.lines.emplace_back(proto::default_reply_text(rep.code));
  return rep;
}

fault::ending read_ending(reader& r) {
  auto e = r.str("ending");
  if (!e) return fault::ending::none;
  if (*e == "close" || *e == "lose") return fault::ending::close_without_reply;
  if (*e == "close_after") return fault::ending::close_after_reply;
  if (*e == "reset") return fault::ending::reset;
  if (*e == "hang") return fault::ending::hang;
  r.error = "returned an action with unknown ending '" + *e + "'";
  return fault::ending::none;
}

fault::malformed_kind read_malformed(reader& r) {
  auto m = r.str("malformed");
  if (!m) return fault::malformed_kind::none;
  if (*m == "mixed_codes") return fault::malformed_kind::mixed_codes;
  if (*m == "missing_space") return fault::malformed_kind::missing_space;
  if (*m == "long_line") return fault::malformed_kind::long_line;
  if (*m == "garbage") return fault::malformed_kind::garbage;
  r.error = "returned an action with unknown malformed kind '" + *m + "'";
  return fault::malformed_kind::none;
}

void read_tls(reader& r, fault::action& a) {
  if (auto m = r.str("starttls")) {
    if (*m == "close_after_220")
      a.tls_mode = fault::starttls_mode::close_after_220;
    else if (*m == "abort_handshake")
      a.tls_mode = fault::starttls_mode::abort_handshake;
    else if (*m == "inject")
      a.tls_mode = fault::starttls_mode::inject_plaintext;
    else
      r.error = "returned an action with unknown starttls mode '" + *m + "'";
  }
  a.inject = r.str("inject").value_or("");
  if (auto c = r.str("certificate")) {
    if (auto kind = fault::certificate_kind_named(*c))
      a.certificate = *kind;
    else
      r.error = "returned an action with unknown certificate kind '" + *c + "'";
  }
}

void read_unsolicited(reader& r, fault::action& a) {
  if (r.field("unsolicited", LUA_TTABLE) != LUA_TTABLE) {
    lua_pop(r.L, 1);
    return;
  }
  reader inner{r.L, lua_gettop(r.L), r.scale, {}, r.octets};
  fault::unsolicited_reply u;
  if (auto rep = read_reply(inner)) u.reply = *rep;
  u.after = inner.seconds("after");
  lua_pushstring(r.L, "close");
  lua_rawget(r.L, inner.idx);
  u.close = lua_isnil(r.L, -1) || lua_toboolean(r.L, -1);
  lua_pop(r.L, 2);
  if (!u.close && u.reply.code == 421 && inner.ok()) {
    inner.error = "returned an action whose unsolicited 421 has close = false: a 421 always closes";
  }
  r.octets = inner.octets;
  if (!inner.ok()) r.error = inner.error;
  a.unsolicited = std::move(u);
}

// smtp.each_recipient{...}: entries 1..each_count, each an action with a reply or false.
void read_each_recipient(reader& r, fault::action& a) {
  if (r.field("each_recipient", LUA_TTABLE) != LUA_TTABLE) {
    lua_pop(r.L, 1);
    return;
  }
  const int list = lua_gettop(r.L);
  // Bounded as smtp.each_recipient bounds it: the list is read into memory outside the sandbox.
  const double count = r.num("each_count").value_or(0);
  if (!(count >= 0 && count <= 100000)) {
    r.error =
        "returned each_recipient with a count of " + std::to_string(count) + " (at most 100000)";
    lua_pop(r.L, 1);
    return;
  }
  const auto n = static_cast<lua_Integer>(count);
  for (lua_Integer i = 1; i <= n; ++i) {
    std::optional<proto::reply> rep;
    if (lua_rawgeti(r.L, list, i) == LUA_TTABLE) {
      reader item{r.L, lua_gettop(r.L), r.scale, {}, r.octets};
      rep = read_reply(item);
      r.octets = item.octets;
      if (!item.ok()) r.error = item.error;
    }
    lua_pop(r.L, 1);
    r.take(octets_per_item);
    if (!r.ok()) break;
    a.each_recipient.push_back(std::move(rep));
  }
  lua_pop(r.L, 1);
}

// What is wrong with the first key of the action table that none of the readers above takes:
// `a.delay = 5` where :delay(5) was meant must be an error, not a fault that never happens.
std::optional<std::string> unknown_field(lua_State* L, int idx) {
  static constexpr std::string_view known[] = {
      "name",        "code",          "enhanced",      "lines",          "raw",
      "malformed",   "delay_seconds", "trickle_bytes", "trickle_every",  "split_at",
      "ending",      "extensions",    "hide",          "starttls",       "inject",
      "certificate", "challenge",     "unsolicited",   "each_recipient", "each_count"};
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {  // raw, as the readers are
    lua_pop(L, 1);                 // the value; the key stays for the next step
    std::string why = "returned an action with a list item or another key that is not a name";
    if (lua_type(L, -1) == LUA_TSTRING) {
      std::size_t n = 0;
      const char* s = lua_tolstring(L, -1, &n);  // a string already: the iteration is safe
      if (std::find(std::begin(known), std::end(known), std::string_view(s, n)) !=
          std::end(known)) {
        continue;
      }
      why = "returned an action with a field '" + std::string(s, n) +
            "' that no action has; its methods (:delay(), :split(), :close(), ...) set the "
            "fields";
    }
    lua_pop(L, 1);
    return why;
  }
  return std::nullopt;
}

// How the reply goes out: delay, trickle and split.
void read_pacing(reader& r, fault::action& a) {
  lua_State* L = r.L;
  a.delay = r.seconds("delay_seconds");
  if (auto b = r.num("trickle_bytes")) {
    // Checked before the cast: NaN, a negative or a huge count would be undefined behaviour.
    if (*b >= 1 && *b <= 1e9) {
      a.trickle_bytes = static_cast<std::size_t>(*b);
    } else {
      r.error = "returned an action whose trickle_bytes is not a count of octets from 1";
    }
  }
  a.trickle_every = r.seconds("trickle_every");
  if (r.field("split_at", LUA_TTABLE) == LUA_TTABLE) {
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));  // no __len
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      if (lua_isnumber(L, -1)) a.split_at.push_back(static_cast<std::size_t>(lua_tointeger(L, -1)));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

const char action_metatable_key = 0;  // its address is the registry key

// Whether the table at idx was made by smtp.reply() and friends: a hand-built {code = 550}
// would be taken for an action only as long as it happens to hold no other field.
bool made_by_smtp(lua_State* L, int idx) {
  idx = lua_absindex(L, idx);
  const int top = lua_gettop(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &action_metatable_key) != LUA_TTABLE) {
    lua_settop(L, top);
    return true;
  }
  const bool same = lua_getmetatable(L, idx) && lua_rawequal(L, -1, -2);
  lua_settop(L, top);
  return same;
}

}  // namespace

void remember_action_metatable(lua_State* L) {
  lua_rawsetp(L, LUA_REGISTRYINDEX, &action_metatable_key);
}

proto::expected<fault::action, std::string> to_action(lua_State* L, int idx, double time_scale) {
  // false as nil: `return refused and smtp.reply(550)` keeps the default when not refused.
  if (idx == 0 || lua_isnil(L, idx) || (lua_isboolean(L, idx) && !lua_toboolean(L, idx))) {
    return fault::action{};
  }
  if (lua_type(L, idx) != LUA_TTABLE) {
    return proto::unexpected{std::string("returned a ") + luaL_typename(L, idx) +
                             "; return an action such as smtp.reply(451, \"4.7.1\", \"text\"), "
                             "or nothing for the default"};
  }
  if (!made_by_smtp(L, idx)) {
    return proto::unexpected{
        std::string("returned a table that is not an action; build one with "
                    "smtp.reply(), smtp.delay(), smtp.close() and friends")};
  }
  reader r{L, lua_absindex(L, idx), time_scale, {}};
  fault::action a;
  a.name = r.str("name").value_or("action");
  if (a.name.size() > longest_name) {
    return proto::unexpected{"returned an action whose name is " + std::to_string(a.name.size()) +
                             " octets long (at most 256: it is shown in the transcript)"};
  }
  a.reply = read_reply(r);
  a.raw = r.str("raw");
  a.malformed = read_malformed(r);
  read_pacing(r, a);
  a.end = read_ending(r);
  a.loses_message = r.str("ending") == "lose";
  auto ext = r.strings("extensions");
  lua_pushstring(L, "extensions");
  lua_rawget(L, r.idx);
  if (!lua_isnil(L, -1)) a.extensions = std::move(ext);
  lua_pop(L, 1);
  a.hide = r.strings("hide");
  read_tls(r, a);
  a.auth_challenge = r.str("challenge");
  read_unsolicited(r, a);
  read_each_recipient(r, a);
  if (!a.each_recipient.empty() &&
      (a.reply || a.raw || a.malformed != fault::malformed_kind::none)) {
    r.error = "returned each_recipient with a reply of its own: each_recipient gives the replies";
  }
  if (!r.ok()) return proto::unexpected{r.error};
  if (a.is_default() && a.name == "action") {
    return proto::unexpected{
        std::string("returned a table that is not an action; build one with "
                    "smtp.reply(), smtp.delay(), smtp.close() and friends")};
  }
  if (auto why = unknown_field(L, r.idx)) return proto::unexpected{*why};
  return a;
}

}  // namespace smtpfault::script
