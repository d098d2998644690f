// lua_sandbox::compile: Lua's parser fed in pieces, with a look at the clock before each.
#include <algorithm>
#include <string>

#include <lua.hpp>

#include "script/lua_sandbox.hpp"

namespace smtpfault::script {

namespace {

// Small enough that the parser's work on one piece stays short even for text made to be slow
// (a label compared with every earlier one: a thousand labels' worth is milliseconds).
constexpr std::size_t piece_octets = 1024;

struct piecewise_text {
  std::string_view rest;
  const char* chunkname;
  lua_sandbox* sandbox;
  std::chrono::nanoseconds deadline;
  const char* limit_reason;
};

const char* next_piece(lua_State* L, void* data, std::size_t* size) {
  auto& text = *static_cast<piecewise_text*>(data);
  if (text.rest.empty()) {
    *size = 0;
    return nullptr;
  }
  // An error here ends the parse as a syntax error does, and lua_load returns it.
  if (lua_sandbox::interrupting()) {
    luaL_error(L, "%s: %s", text.chunkname, lua_sandbox::interrupted_reason);
  }
  if (text.sandbox->clock_now() > text.deadline) {
    luaL_error(L, "%s: %s", text.chunkname, text.limit_reason);
  }
  const std::string_view piece = text.rest.substr(0, piece_octets);
  text.rest.remove_prefix(piece.size());
  *size = piece.size();
  return piece.data();
}

}  // namespace

int lua_sandbox::compile(lua_State* L, std::string_view code, const char* chunkname) {
  // Lua's chunk name starts with '@' (a file) or '=' (as it is); the errors name it without.
  const char* shown = chunkname[0] == '@' || chunkname[0] == '=' ? chunkname + 1 : chunkname;
  const auto deadline = budget_ != 0 ? deadline_ : now() + limits_.run_time;
  piecewise_text text{code, shown, this, deadline, compile_limit_reason_.c_str()};
  // A binary chunk is refused by mode "t" at its first octet, as before.
  return lua_load(L, next_piece, &text, chunkname, "t");
}

}  // namespace smtpfault::script
