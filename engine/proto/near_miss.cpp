#include "proto/near_miss.hpp"

#include <algorithm>

namespace smtpfault::proto {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Three rows of the table (a swap looks two back): memory in b's length, whatever a's is.
  std::vector<std::size_t> two_back(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        current[j] = std::min(current[j], two_back[j - 2] + 1);
    }
    std::swap(two_back, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::size_t allowed = word.size() < 5 ? 1 : word.size() < 12 ? 2 : 3;
  const std::string* best = nullptr;
  std::size_t best_distance = allowed + 1;
  for (const auto& c : candidates) {
    // The lengths alone may rule it out: a word a million letters long is no slip of a name.
    const std::size_t longer = std::max(word.size(), c.size());
    if (longer - std::min(word.size(), c.size()) > allowed) continue;
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best = &c;
      best_distance = d;
    }
  }
  return best ? " (did you mean '" + *best + "'?)" : std::string();
}

}  // namespace smtpfault::proto
