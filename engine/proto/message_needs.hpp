// What a message asks of a server's extensions before it may be sent: 8BITMIME for 8-bit octets
// (RFC 6152), SMTPUTF8 for raw UTF-8 in its header (RFC 6532). Found before MAIL FROM, so that a
// message the server cannot take goes to none of its recipients. Pure.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::proto {

inline bool is_8bit(char c) {
  return (static_cast<unsigned char>(c) & 0x80) != 0;
}

// The offset of the first octet above 127, or npos. The server looks at every message it takes
// whose MAIL declared no 8-bit body: 32 octets at a time, then eight, as a 100 KB message is
// common and nearly all are 7-bit.
inline std::size_t first_8bit(std::string_view text) {
  constexpr std::uint64_t high_bits = 0x8080808080808080ull;
  std::size_t i = 0;
  for (; i + 32 <= text.size(); i += 32) {
    std::uint64_t words[4];
    std::memcpy(words, text.data() + i, 32);
    if ((words[0] | words[1] | words[2] | words[3]) & high_bits) break;
  }
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if (word & high_bits) break;
  }
  for (; i < text.size(); ++i)
    if (is_8bit(text[i])) return i;
  return std::string_view::npos;
}

inline bool has_8bit(std::string_view text) {
  return first_8bit(text) != std::string_view::npos;
}

struct message_needs {
  bool eight_bit = false;  // an octet above 127 anywhere: BODY=8BITMIME
  // The header field with the first such octet ("Subject"; a line that is no field, whole),
  // which only SMTPUTF8 lets go as it is (else RFC 2047 encoded words are needed).
  std::optional<std::string> non_ascii_header;
};

message_needs needs_of(std::string_view message);

}  // namespace smtpfault::proto
