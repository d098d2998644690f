// Well-formed UTF-8 (RFC 3629): what RFC 6531/6532 allow in addresses, and what JSON output
// must be. Wire data may hold any octets, so both checks and repair are needed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpfault::proto {

// Length of the well-formed UTF-8 sequence at s[i], or 0 (no overlongs, no surrogates, nothing
// above U+10FFFF, no truncated sequence).
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;
    return 4;
  }
  return 0;
}

// Length of the sequence at s[i] (i < s.size(), s[i] >= 0x80) that a terminal or log may show
// as it is, or 0: not UTF-8, a C1 control (U+0080-U+009F: a terminal may take U+009B for the
// start of an escape sequence), or a bidirectional control (U+061C, U+200E/F, U+202A-E,
// U+2066-9: they reorder what is shown around them).
inline std::size_t showable_sequence_length(std::string_view s, std::size_t i) {
  const std::size_t n = utf8_sequence_length(s, i);
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const bool c1 = n == 2 && at(0) == 0xC2 && at(1) < 0xA0;
  const bool bidi =
      (n == 2 && at(0) == 0xD8 && at(1) == 0x9C) ||
      (n == 3 && at(0) == 0xE2 &&
       ((at(1) == 0x80 && ((at(2) >= 0xAA && at(2) <= 0xAE) || at(2) == 0x8E || at(2) == 0x8F)) ||
        (at(1) == 0x81 && at(2) >= 0xA6 && at(2) <= 0xA9)));
  // U+FFFE and U+FFFF: noncharacters, which no XML document may hold (a report would lose them).
  const bool nonchar = n == 3 && at(0) == 0xEF && at(1) == 0xBF && (at(2) == 0xBE || at(2) == 0xBF);
  return c1 || bidi || nonchar ? 0 : n;
}

inline bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// s with every octet that does not start a well-formed sequence replaced by U+FFFD.
inline std::string utf8_repaired(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace smtpfault::proto
