// Hexadecimal digits, as in "=C3" (RFC 2047 Q encoding) and "%C3" (URL percent-encoding).
#pragma once

namespace smtpfault::proto {

// The value of a hex digit, either case; -1 for anything else.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace smtpfault::proto
