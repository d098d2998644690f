// Between C++ and Lua values: the session table, hook arguments, and actions returned by hooks.
#pragma once

#include <string>
#include <string_view>

#include "fault/action.hpp"
#include "proto/expected.hpp"
#include "session/server_session.hpp"

struct lua_State;

namespace smtpfault::script {

class scenario;

// Defines the C half of the `smtp` table (sleep, now, random, chance, log, ip_in).
void register_c_api(lua_State* L, scenario* owner);
// Once lua/smtp.lua and lua/smtp_helpers.lua have run: routes the public functions of `smtp`
// through a C function, so that a call in tail position keeps the scenario's frame and errors
// can name the scenario's line.
void keep_caller_frames(lua_State* L);
// The sentinel smtp.sleep yields with, so the host can tell sleeps from other yields.
void* sleep_sentinel();

// What a session's Lua table last received, so a hook call writes only what changed: hooks run
// on every command, and rewriting every field interned every string every time. The fields
// smtpfault sets are for reading; a script keeps its own data in `s.state`.
struct session_table_state {
  bool written = false;
  std::string helo, tls_version, auth_user, mail_from;
  std::uint64_t envelope_version = 0;
  bool message_envelope = false;  // mail_from and rcpts were the message's, for on_message
  bool tls = false;
  bool early_talker = false;
  std::size_t messages = 0;
  std::size_t counts[static_cast<std::size_t>(proto::verb::unknown) + 1] = {};
};

// Refreshes the fields of the session table at table_ref from the session, as hook h sees it.
void update_session_table(lua_State* L, int table_ref, const session::server_session& s,
                          session::hook h, session_table_state& last);
// Pushes the hook's arguments after the session table; returns how many.
int push_hook_arguments(lua_State* L, session::hook h, const session::server_session& s);

// Sets `headers` (lower-case name -> first value, unfolded) and `subject` (encoded words
// decoded; nil without one) on the table at the top of L's stack, from a message's text: as
// on_message's msg has them, and a custom check's run.messages[i].
void set_headers_and_subject(lua_State* L, std::string_view data);

// Reads the value at idx (an action table or nil) into an action.
proto::expected<fault::action, std::string> to_action(lua_State* L, int idx, double time_scale);
// Keeps the table on top of the stack (smtp's action metatable) as the one to_action asks of an
// action; pops it. Without it, to_action takes any table of action fields.
void remember_action_metatable(lua_State* L);

}  // namespace smtpfault::script
