// Expectations between Lua and C++: reading `expect { ... }` tables, and running custom checks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "script/expectations.hpp"
#include "script/lua_sandbox.hpp"

namespace smtpfault::script {

// Reads smtp._expectations (filled by expect{}, which lua/smtp_helpers.lua validates) into out.
std::optional<std::string> parse_expectations(lua_State* L, expectations& out);

// Calls each check function with a `run` table; a check returns true, or false and a message.
std::vector<check_result> run_custom_checks(lua_sandbox& sandbox, const std::vector<int>& checks,
                                            const run_outcome& run);

}  // namespace smtpfault::script
