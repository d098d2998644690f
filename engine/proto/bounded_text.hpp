// Text from a script kept to a bounded size: the transcript keeps a bounded number of lines and
// sessions, so each line must be bounded too, or one error("x" .. huge) per session would hold
// megabytes for as long as the session is kept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpfault::proto {

inline constexpr std::size_t longest_script_text = 4096;

// A copy of text when short enough, else of its start, saying how long it was.
inline std::string bounded_text(std::string_view text, std::size_t longest = longest_script_text) {
  if (text.size() <= longest) return std::string(text);
  return std::string(text.substr(0, longest)) + "... (" + std::to_string(text.size()) + " octets)";
}

}  // namespace smtpfault::proto
