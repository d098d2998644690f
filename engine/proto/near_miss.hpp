// Near misses among names, for "did you mean": a misspelt key, variable, hook or call.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace smtpfault::proto {

// Edits between a and b, a swap of two neighbours counting as one (optimal string alignment):
// "lmpt" is one slip away from "lmtp", not two.
std::size_t edit_distance(std::string_view a, std::string_view b);

// " (did you mean 'x'?)" for the candidate closest to word, when it is a plausible slip (one edit
// for a short word, two or three for longer ones); "" otherwise.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace smtpfault::proto
