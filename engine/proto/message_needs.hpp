// What a message asks of a server's extensions before it may be sent: 8BITMIME for 8-bit octets
// (RFC 6152), SMTPUTF8 for raw UTF-8 in its header (RFC 6532). Found before MAIL FROM, so that a
// message the server cannot take goes to none of its recipients. Pure.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::proto {

inline bool is_8bit(char c) {
  return (static_cast<unsigned char>(c) & 0x80) != 0;
}

inline bool has_8bit(std::string_view text) {
  return std::any_of(text.begin(), text.end(), is_8bit);
}

struct message_needs {
  bool eight_bit = false;  // an octet above 127 anywhere: BODY=8BITMIME
  // The header field with the first such octet ("Subject"; a line that is no field, whole),
  // which only SMTPUTF8 lets go as it is (else RFC 2047 encoded words are needed).
  std::optional<std::string> non_ascii_header;
};

message_needs needs_of(std::string_view message);

}  // namespace smtpfault::proto
