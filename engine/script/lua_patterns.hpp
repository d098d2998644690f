// string.find, string.match, string.gmatch and string.gsub with Lua 5.4's pattern semantics
// (manual 6.4.1), whose matcher reports the work it does. Lua's own matcher runs inside C, where
// the instruction-count hook never fires: a pattern that backtracks, such as
// string.rep("a", 40000):find(".-.-.-.-b"), would hold its thread for hours. These count their
// matching steps and hand them to a charge function, which stops a runaway match by raising a
// Lua error once the caller's budget is spent.
#pragma once

#include <cstdint>

#include "script/step_charge.hpp"

namespace smtpfault::script {

// The charge gets the matching steps spent since its last call: about every
// pattern_charge_interval steps, and at the end of each call.
inline constexpr std::uint64_t pattern_charge_interval = 1000;

// Replaces find, match, gmatch and gsub in the table at `table_index` (the string library table,
// which string methods such as s:find go through too).
void install_bounded_patterns(lua_State* L, int table_index, step_charge charge);

}  // namespace smtpfault::script
