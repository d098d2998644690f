#include "script/lua_bridge.hpp"

#include <lua.hpp>

#include <cmath>
#include <string_view>

#include "proto/data_reader.hpp"
#include "proto/header_words.hpp"
#include "script/lua_fields.hpp"

namespace smtpfault::script {

namespace {

using session::hook;

void push_params(lua_State* L, const std::vector<proto::esmtp_param>& params) {
  lua_createtable(L, 0, static_cast<int>(params.size()));
  for (const auto& p : params) {
    if (p.value) {
      lua_pushlstring(L, p.value->data(), p.value->size());
    } else {
      lua_pushboolean(L, 1);
    }
    lua_setfield(L, -2, p.keyword.c_str());
  }
}

void push_address(lua_State* L, const proto::mailbox& m, const std::vector<proto::esmtp_param>& p) {
  lua_createtable(L, 0, 4);
  set_string(L, "address", m.address());
  set_string(L, "local_part", m.local_part);
  set_string(L, "domain", m.domain);
  push_params(L, p);
  lua_setfield(L, -2, "params");
}

// Splits "host:port" / "[v6]:port" into ip and port.
std::pair<std::string, lua_Integer> split_client(const std::string& client) {
  auto colon = client.rfind(':');
  if (colon == std::string::npos) return {client, 0};
  std::string host = client.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return {host, std::atoll(client.c_str() + colon + 1)};
}

// Header fields of the message (unfolded), by lower-case name; the first of each name wins.
void push_headers(lua_State* L, std::string_view data) {
  lua_newtable(L);
  std::string name, value;
  auto flush = [&] {
    if (name.empty()) return;
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lua_getfield(L, -1, name.c_str());
    bool seen = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!seen) set_string(L, name.c_str(), value);
    name.clear();
    value.clear();
  };
  std::size_t pos = 0;
  while (pos < data.size()) {
    auto end = data.find('\n', pos);
    if (end == std::string_view::npos) end = data.size();
    std::string_view line = data.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section
    if (line.front() == ' ' || line.front() == '\t') {
      value += std::string(line);
      continue;
    }
    flush();
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    name = std::string(line.substr(0, colon));
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
      v.remove_prefix(1);
    value = std::string(v);
  }
  flush();
}

// s.rcpts: the envelope's recipients in order, in a new table (an empty one may stay).
void update_recipients(lua_State* L, const session::envelope& env) {
  const auto n = env.recipients.size();
  lua_pushstring(L, "rcpts");
  lua_createtable(L, static_cast<int>(n), 0);
  for (std::size_t i = 0; i < n; ++i) {
    auto a = env.recipients[i].address.address();
    lua_pushlstring(L, a.data(), a.size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_rawset(L, -3);
}

// s.commands.RCPT before any RCPT: 0, so that `s.commands.RCPT > 2` works from the start. Only
// for the names the table uses: a misspelt s.commands.RCTP stays nil (and fails where used).
int zero_count(lua_State* L) {
  std::size_t n = 0;
  const char* key = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : nullptr;
  const std::string_view name = key ? std::string_view(key, n) : std::string_view();
  bool known = name == "UNKNOWN";
  for (int v = 0; !known && key && v < static_cast<int>(proto::verb::unknown); ++v)
    known = proto::verb_name(static_cast<proto::verb>(v)) == name;
  if (!known) return 0;
  lua_pushinteger(L, 0);
  return 1;
}

// The metatable of every session's `commands` table, made once per state: one per session was
// garbage on every connection. Protected, since a change would reach every session.
void push_commands_metatable(lua_State* L) {
  static const char registry_key = 0;  // its address is the key
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &registry_key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, zero_count);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &registry_key);
}

// Counts go into the session's one `commands` table; only the ones that moved are written.
void update_command_counts(lua_State* L, const session::server_session& s,
                           session_table_state& last) {
  lua_pushstring(L, "commands");
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 8);
    push_commands_metatable(L);
    lua_setmetatable(L, -2);
    lua_pushstring(L, "commands");
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  for (int v = 0; v <= static_cast<int>(proto::verb::unknown); ++v) {
    auto verb = static_cast<proto::verb>(v);
    auto n = s.command_count(verb);
    if (n == last.counts[v]) continue;
    last.counts[v] = n;
    auto name = proto::verb_name(verb);
    if (name.empty()) name = "UNKNOWN";
    lua_pushlstring(L, name.data(), name.size());
    lua_pushinteger(L, static_cast<lua_Integer>(n));
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
}

// Whether t[key] (t on top of the stack) is a table with nothing in it at all, e.g. the
// recipients of the last envelope when this one has none yet either: it can stay.
bool holds_empty_table(lua_State* L, const char* key) {
  lua_pushstring(L, key);
  bool empty = false;
  if (lua_rawget(L, -2) == LUA_TTABLE) {
    lua_pushnil(L);
    empty = lua_next(L, -2) == 0;  // pushes a key and a value only when there is one
    if (!empty) lua_pop(L, 2);
  }
  lua_pop(L, 1);
  return empty;
}

// Writes v under key unless it is what was written last time.
void set_string_if_changed(lua_State* L, const char* key, const std::string& v, std::string& last,
                           bool force) {
  if (!force && v == last) return;
  last = v;
  set_string(L, key, v);
}

}  // namespace

void update_session_table(lua_State* L, int table_ref, const session::server_session& s, hook h,
                          session_table_state& last) {
  const auto& f = s.facts();
  const bool all = !last.written;
  lua_rawgeti(L, LUA_REGISTRYINDEX, table_ref);
  if (all) {  // fixed for the whole session
    set_string(L, "id", f.session_id);
    auto [ip, port] = split_client(f.client_address);
    set_string(L, "client", f.client_address);
    set_string(L, "client_ip", ip);
    set_integer(L, "client_port", port);
    set_bool(L, "lmtp", f.lmtp);
    set_bool(L, "implicit_tls", f.implicit_tls);
  }
  set_string_if_changed(L, "helo", f.helo, last.helo, all);
  if (all || f.tls != last.tls) {
    last.tls = f.tls;
    set_bool(L, "tls", f.tls);
  }
  if (all || f.early_talker != last.early_talker) {
    last.early_talker = f.early_talker;
    set_bool(L, "early_talker", f.early_talker);
  }
  set_string_if_changed(L, "tls_version", f.tls_version, last.tls_version, all);
  set_string_if_changed(L, "auth_user", f.auth_user, last.auth_user, all);
  if (all || s.messages_accepted() != last.messages) {
    last.messages = s.messages_accepted();
    set_integer(L, "messages", static_cast<lua_Integer>(last.messages));
  }
  // The envelope only when it changed: a new table each time would be garbage each time.
  // on_message sees the message's transaction: the session's own is already cleared for the
  // next one when the message is complete.
  const bool message_envelope = h == hook::message;
  if (all || s.envelope_version() != last.envelope_version ||
      message_envelope != last.message_envelope) {
    last.envelope_version = s.envelope_version();
    last.message_envelope = message_envelope;
    const auto& env = s.hook_envelope(h);
    // Compared in place: the sender is the same on nearly every look.
    if (all || !env.mail_from.address_is(last.mail_from)) {
      last.mail_from = env.mail_from.address();
      set_string(L, "mail_from", last.mail_from);
    }
    if (all || !env.recipients.empty() || !holds_empty_table(L, "rcpts")) {
      update_recipients(L, env);
    }
  }
  update_command_counts(L, s, last);
  last.written = true;
  lua_pop(L, 1);
}

namespace {

// What the API lists too: {kind = "bare_lf", offset = 120}, ... in the order found; offsets
// count octets since the start of the data on the wire.
void push_anomalies(lua_State* L, const std::vector<proto::anomaly>& found) {
  lua_createtable(L, static_cast<int>(found.size()), 0);
  for (std::size_t i = 0; i < found.size(); ++i) {
    lua_createtable(L, 0, 2);
    set_string(L, "kind", proto::anomaly_name(found[i].kind));
    set_integer(L, "offset", static_cast<lua_Integer>(found[i].offset));
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "anomalies");
}

}  // namespace

void set_headers_and_subject(lua_State* L, std::string_view data) {
  push_headers(L, data);
  // The subject as its author wrote it (RFC 2047 words decoded, as the API shows it);
  // headers.subject keeps the field as sent.
  lua_getfield(L, -1, "subject");
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::size_t n = 0;
    const char* raw = lua_tolstring(L, -1, &n);
    const auto text = proto::decode_encoded_words(std::string_view(raw, n));
    lua_pop(L, 1);
    lua_pushlstring(L, text.data(), text.size());
  }
  lua_setfield(L, -3, "subject");
  lua_setfield(L, -2, "headers");
}

namespace {

// on_message's argument: the message as received, its envelope, its headers and what was odd in
// its text.
void push_received_message(lua_State* L, const session::message& m) {
  lua_createtable(L, 0, 7);
  set_string(L, "data", m.data);
  set_integer(L, "size", static_cast<lua_Integer>(m.data.size()));
  set_string(L, "mail_from", m.env.mail_from.address());
  lua_createtable(L, static_cast<int>(m.env.recipients.size()), 0);
  for (std::size_t i = 0; i < m.env.recipients.size(); ++i) {
    auto a = m.env.recipients[i].address.address();
    lua_pushlstring(L, a.data(), a.size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "recipients");
  push_anomalies(L, m.anomalies);
  set_headers_and_subject(L, m.data);
}

// on_command's argument: the verb in upper case, its argument, whether the server knows it, and
// whether its line ended in a bare LF.
void push_command(lua_State* L, const proto::command& cmd) {
  lua_createtable(L, 0, 3);
  // Known verbs are spelled upper case in the table already; only unknown ones need it.
  auto name = proto::verb_name(cmd.kind);
  if (name.empty()) {
    std::string verb = cmd.verb_text;
    for (auto& c : verb)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    set_string(L, "verb", verb);
  } else {
    set_string(L, "verb", name);
  }
  set_string(L, "argument", cmd.argument);
  set_bool(L, "known", cmd.kind != proto::verb::unknown);
  // Only when set: a field fewer on nearly every command, and nil reads as false.
  if (cmd.bare_lf) set_bool(L, "bare_lf", true);
}

}  // namespace

int push_hook_arguments(lua_State* L, hook h, const session::server_session& s) {
  const auto& cmd = s.current_command();
  switch (h) {
    case hook::helo:
    case hook::ehlo:
      lua_pushlstring(L, cmd.argument.data(), cmd.argument.size());
      return 1;
    case hook::mail:
    case hook::rcpt:
      push_address(L, cmd.path, cmd.params);
      return 1;
    case hook::auth: {
      const auto& c = s.auth_attempt();
      lua_createtable(L, 0, 4);
      set_string(L, "mechanism", s.auth_attempt_mechanism());
      set_string(L, "user", c.user);
      set_string(L, "password", c.secret);
      set_string(L, "authzid", c.authzid);
      return 1;
    }
    case hook::bdat:
      lua_createtable(L, 0, 2);
      set_integer(L, "size", static_cast<lua_Integer>(s.last_chunk_size()));
      set_bool(L, "last", s.last_chunk_is_last());
      return 1;
    case hook::message:
      push_received_message(L, s.pending_message());
      return 1;
    case hook::command:
      push_command(L, cmd);
      return 1;
    default:
      return 0;
  }
}

}  // namespace smtpfault::script
