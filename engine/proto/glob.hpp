// Address globs ("*@example.com", "b?b@*"): API filters, fault rules and smtp.matches share this.
#pragma once

#include <string_view>

namespace smtpfault::proto {

// '*' any run, '?' one character (a whole UTF-8 one: "zo?@x" matches "zoë@x"), ASCII letters
// case-insensitive. Linear in practice, never exponential.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace smtpfault::proto
