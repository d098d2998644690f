// Hints added to a script's error message: what was probably meant by a misspelt call or field
// ("did you mean 'expect'?"), and why print, os or io are missing (the sandbox).
#pragma once

#include <string>
#include <string_view>

struct lua_State;

namespace smtpfault::script {

// A global of standard Lua that the sandbox leaves out (print, os, io, dofile, ...): a script
// that calls it fails, found at load (scenario_checks) or said in the error (error_hint).
bool left_out_of_sandbox(std::string_view name);

// " (did you mean ...)" or " ('os' is not available in the sandbox ...)" for an error message
// raised in L; "" when nothing is likely.
std::string error_hint(lua_State* L, const std::string& msg);

}  // namespace smtpfault::script
