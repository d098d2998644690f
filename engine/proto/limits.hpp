// Protocol limits. Defaults are RFC 5321 section 4.5.3.1 minimums unless noted.
#pragma once

#include <cstddef>
#include <cstdint>

namespace smtpfault::proto {

struct limits {
  std::size_t local_part = 64;     // 4.5.3.1.1
  std::size_t domain = 255;        // 4.5.3.1.2
  std::size_t path = 256;          // 4.5.3.1.3, including the angle brackets
  std::size_t command_line = 512;  // 4.5.3.1.4, including CRLF
  std::size_t text_line = 1000;    // 4.5.3.1.6, including CRLF, not the stuffed dot; 0 = no limit
  std::size_t auth_line = 12288;   // RFC 4954 section 4
  std::size_t max_recipients = 1000;  // 4.5.3.1.8 asks for at least 100; Postfix uses 1000
  std::uint64_t max_message_size = 10 * 1024 * 1024;  // advertised with SIZE; 0 = no limit
};

}  // namespace smtpfault::proto
