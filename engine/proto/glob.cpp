#include "proto/glob.hpp"

#include <algorithm>

#include "proto/ascii.hpp"

namespace smtpfault::proto {

namespace {

// Octets of the UTF-8 character that starts at t[i] (1 for a stray byte): '?' takes a whole
// character of an SMTPUTF8 address ("zo?@x" matches "zoë@x"), and '*' never stops inside one.
std::size_t char_length(std::string_view t, std::size_t i) {
  const auto c = static_cast<unsigned char>(t[i]);
  const std::size_t n = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 1;
  return std::min(n, t.size() - i);
}

}  // namespace

bool glob_match(std::string_view p, std::string_view t) {
  // Iterative matcher with one backtrack point: linear in practice, never exponential.
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '?') {
      ++pi;
      ti += char_length(t, ti);
    } else if (pi < p.size() && p[pi] != '*' && ascii_upper(p[pi]) == ascii_upper(t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      mark += char_length(t, mark);
      ti = mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*')
    ++pi;
  return pi == p.size();
}

}  // namespace smtpfault::proto
