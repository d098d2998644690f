// xpcall whose message handler cannot outlive the sandbox's limits. Lua calls a message handler
// where the error was raised, before unwinding; for the sandbox's own stop (the instruction,
// time and memory limits, or shutdown) that is inside the count hook, where Lua turns hooks
// off, so a handler that looped there would run for ever and hang the thread with every session
// on it. This xpcall passes such a stop on untouched; any other error reaches the handler as
// with Lua's own.
#pragma once

struct lua_State;

namespace smtpfault::script {

// Tells whether the run on L is being stopped (its error must not reach a script's handler).
using run_stopping = bool (*)(lua_State* L);

// Replaces the global xpcall. Calls through it may yield, as through Lua's own.
void install_guarded_xpcall(lua_State* L, run_stopping stopping);

}  // namespace smtpfault::script
