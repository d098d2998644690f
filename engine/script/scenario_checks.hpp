// What a scenario's load checks of its source and globals, before any session would fail on
// them: names meant as hooks that are none, hooks made local or defined twice, misspelt smtp
// functions, actions made and dropped, and the smtp table replaced.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "session/server_session.hpp"

struct lua_State;

namespace smtpfault::script {

constexpr session::hook all_hooks[] = {
    session::hook::connect,  session::hook::helo,    session::hook::ehlo,
    session::hook::starttls, session::hook::auth,    session::hook::mail,
    session::hook::rcpt,     session::hook::data,    session::hook::bdat,
    session::hook::message,  session::hook::command, session::hook::disconnect};

// The last line that assigns to name ("on_rcpt = 5"), or 0.
std::size_t assignment_line(std::string_view code, std::string_view name);
// Pushes the global `name` without running a metamethod of _G; returns its type.
int raw_global(lua_State* L, const char* name);

// Each an error naming chunkname and the line, or nothing. L holds the scenario as loaded.
std::optional<std::string> check_hook_names(lua_State* L, std::string_view code,
                                            const std::string& chunkname);
std::optional<std::string> check_local_hooks(lua_State* L, std::string_view code,
                                             const std::string& chunkname);
// A hook whose one parameter is named for its second argument (on_rcpt(rcpt)): it gets the
// session there, and its test of the recipient never holds.
std::optional<std::string> check_hook_parameters(lua_State* L);
// A hook defined twice, in one file or in a module the scenario requires and again in the
// scenario: files are (chunkname, text) pairs, the scenario's and its modules'.
std::optional<std::string> check_duplicate_hooks(
    lua_State* L, const std::vector<std::pair<std::string, std::string_view>>& files);
std::optional<std::string> check_calls(lua_State* L, std::string_view code,
                                       const std::string& chunkname);
// Also releases api_ref, the reference to the smtp table as the library made it.
std::optional<std::string> check_api_kept(lua_State* L, int api_ref, std::string_view code,
                                          const std::string& chunkname);

}  // namespace smtpfault::script
