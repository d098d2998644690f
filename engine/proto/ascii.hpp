// ASCII-only digits and case folding for protocol words (verbs, keywords, domains, mechanism
// names): the locale must not change what a command means.
#pragma once

#include <string_view>

namespace smtpfault::proto {

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

inline char ascii_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_upper(a[i]) != ascii_upper(b[i])) return false;
  }
  return true;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace smtpfault::proto
