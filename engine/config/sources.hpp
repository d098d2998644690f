// Reading the sources themselves, shared by the server's settings (loader.cpp) and the
// client-side commands' flags (command_keys.cpp). Internal to engine/config.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/keys.hpp"
#include "proto/expected.hpp"

namespace smtpfault::config::detail {

// The whole file, or the reason it could not be read (a directory, no permission, ...).
proto::expected<std::string, std::string> read_whole_file(const std::string& path);

// "PATH:LINE:COLUMN: ", or "PATH: " when line is 0 (position unknown).
std::string file_position(const std::string& path, std::uint32_t line, std::uint32_t column);

std::string_view trim(std::string_view text);

// Splits on ',' and trims; "" is an empty list, but an empty item is a typo worth reporting.
proto::expected<std::vector<std::string_view>, std::string> split_list(std::string_view text);
// KEY=VALUE items: a comma separates two only where a KEY= follows it, so a value may hold
// commas ("to=a@x.test,b@x.test,helo=h" is to=a@x.test,b@x.test and helo=h).
proto::expected<std::vector<std::string_view>, std::string> split_pairs(std::string_view text);

// true/false/1/0/yes/no, in any case.
proto::expected<bool, std::string> bool_from_text(std::string_view text);

}  // namespace smtpfault::config::detail
