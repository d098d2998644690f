// Near misses among names: a misspelt hook ("on_rctp") or a misspelt call ("expct").
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace smtpfault::script {

// Levenshtein distance: insertions, deletions and substitutions of one character each.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The candidate closest to word, at most max_distance edits away; "" when none is.
inline std::string closest_name(std::string_view word, const std::vector<std::string>& candidates,
                                std::size_t max_distance) {
  std::string best;
  std::size_t best_d = max_distance + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best = c;
      best_d = d;
    }
  }
  return best;
}

}  // namespace smtpfault::script
