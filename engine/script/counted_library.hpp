// Library functions whose loops run inside C, where the instruction-count hook never fires, made
// to count their work: string.rep of an empty string (Lua makes "" by n empty copies, 10^15 of
// them if asked), table.move over a huge range, and table.insert and table.remove on a table
// whose __len claims a huge length (they shift every element in between). Each would otherwise
// hold its thread, every session on it and a SIGTERM for as long as the loop runs.
#pragma once

#include "script/step_charge.hpp"

namespace smtpfault::script {

// The charge gets the elements a call will walk, before it does its work.

// Replaces string.rep, table.move, table.insert and table.remove. What they do is unchanged.
void install_counted_library(lua_State* L, step_charge charge);

}  // namespace smtpfault::script
