// Hints added to a script's error message: what was probably meant by a misspelt call or field
// ("did you mean 'expect'?"), and why print, os or io are missing (the sandbox).
#pragma once

#include <string>

struct lua_State;

namespace smtpfault::script {

// " (did you mean ...)" or " ('os' is not available in the sandbox ...)" for an error message
// raised in L; "" when nothing is likely.
std::string error_hint(lua_State* L, const std::string& msg);

}  // namespace smtpfault::script
