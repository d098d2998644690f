// Boost.JSON keeps the last of two equal keys in an object, so {"match": A, "match": B} would be
// read as B without a word. Requests that configure faults must not be half-read: this finds
// the first key given twice, for a 400 that names it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::json {

// The dotted path of the first key that appears twice in one object ("action.reply.code"), or
// nullopt. Text that is not JSON is nullopt too: the parser proper reports that.
std::optional<std::string> first_duplicate_key(std::string_view text);

}  // namespace smtpfault::json
