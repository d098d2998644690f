#include "proto/header_words.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "proto/hex.hpp"
#include "proto/sasl.hpp"
#include "proto/utf8.hpp"

namespace smtpfault::proto {

namespace {

// The "Q" encoding (RFC 2047 4.2): "_" is a space, "=XX" an octet.
std::optional<std::string> decode_q(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      out += ' ';
    } else if (s[i] == '=') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// charset, encoding and text of "=?charset?encoding?text?=" (without the delimiters).
std::optional<std::string> decode_word(std::string_view charset, char encoding,
                                       std::string_view text) {
  std::string cs(charset.substr(0, charset.find('*')));  // RFC 2231 adds "*language"
  for (auto& c : cs)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::optional<std::string> octets;
  if (encoding == 'B' || encoding == 'b') {
    octets = base64_decode(text);
  } else if (encoding == 'Q' || encoding == 'q') {
    octets = decode_q(text);
  }
  if (!octets) return std::nullopt;
  if (cs == "iso-8859-1" || cs == "latin1") return latin1_to_utf8(*octets);
  if ((cs == "utf-8" || cs == "us-ascii") && valid_utf8(*octets)) return octets;
  return std::nullopt;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

}  // namespace

std::string decode_encoded_words(std::string_view text) {
  std::string out;
  std::string pending_space;  // dropped when it only separates two encoded words
  bool after_word = false;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "=?") == 0) {
      const auto q1 = text.find('?', i + 2);
      const auto q2 = q1 == std::string_view::npos ? q1 : text.find('?', q1 + 1);
      const auto q3 = q2 == std::string_view::npos ? q2 : text.find('?', q2 + 1);
      if (q3 != std::string_view::npos && q2 == q1 + 2 && q3 + 1 < text.size() &&
          text[q3 + 1] == '=') {
        const auto word = text.substr(i, q3 + 2 - i);
        const bool spaced =
            std::find_if(word.begin(), word.end(), is_space) != word.end();  // not a word then
        auto decoded = spaced ? std::nullopt
                              : decode_word(text.substr(i + 2, q1 - i - 2), text[q1 + 1],
                                            text.substr(q2 + 1, q3 - q2 - 1));
        if (decoded) {
          if (!after_word) out += pending_space;
          pending_space.clear();
          out += *decoded;
          after_word = true;
          i = q3 + 2;
          continue;
        }
      }
    }
    if (is_space(text[i])) {
      pending_space += text[i++];
      continue;
    }
    out += pending_space;
    pending_space.clear();
    after_word = false;
    out += text[i++];
  }
  return out + pending_space;
}

}  // namespace smtpfault::proto
