// A TOML file's text parsed into a table, with the parser's error as "PATH:LINE:COLUMN: what".
// Internal to engine/config; includes toml++, so only the files that parse TOML take it.
#pragma once

#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "proto/expected.hpp"

namespace smtpfault::config::detail {

// Keys of more dotted parts than this are refused before the parser sees them: the parser nests
// one table per part and recurses through them, so a key of 100,000 parts overflowed the stack.
// No key smtpfault reads has more than three.
inline constexpr int max_key_parts = 64;

proto::expected<toml::table, std::string> parse_toml(std::string_view content,
                                                     const std::string& path);

}  // namespace smtpfault::config::detail
