// Work a library function does inside C, where the instruction-count hook never fires (a
// pattern's matching, pairs() sorting its keys, table.move walking a range), handed to the
// sandbox as steps, so that it counts like the script's own instructions.
#pragma once

#include <cstdint>

#include <lua.hpp>

namespace smtpfault::script {

// Receives steps spent (one is about as much work as one instruction). May raise a Lua error
// (luaL_error) to stop the run once its budget is spent.
using step_charge = void (*)(lua_State* L, std::uint64_t steps);

// The charge rides along as a C closure's upvalue: a function pointer as light userdata, fine on
// every platform Lua supports (POSIX dlsym relies on the same conversion).
inline void push_step_charge(lua_State* L, step_charge charge) {
  lua_pushlightuserdata(L, reinterpret_cast<void*>(charge));
}

inline step_charge step_charge_at(lua_State* L, int upvalue) {
  return reinterpret_cast<step_charge>(lua_touserdata(L, lua_upvalueindex(upvalue)));
}

}  // namespace smtpfault::script
