// What the DATA reader notes as the octets go by, for a message body that arrived whole, in
// BDAT chunks (RFC 3030): bare CR, bare LF, NUL and lines over the text-line limit. There is no
// dot-stuffing in BDAT, so a leading dot is plain content here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "proto/data_reader.hpp"

namespace smtpfault::proto {

struct body_scan {
  std::vector<anomaly> anomalies;  // at most data_reader::max_anomalies, in order
  std::uint64_t anomaly_count = 0;
  bool line_too_long = false;
};

// max_text_line: octets of a line with its CRLF; 0 = unlimited. Offsets count from the start
// of the body, which for BDAT is the start of the message data on the wire.
body_scan scan_body(std::string_view body, std::size_t max_text_line);

// What a whole message holds against how it was sent: its first 8-bit octet when MAIL declared
// no 8-bit body (RFC 6152 3), and in BDAT data its first line ".", which ends nothing there but
// ends the message early where a relay passes it on with DATA unstuffed (a smuggling test).
std::vector<anomaly> scan_declarations(std::string_view body, bool eight_bit_declared,
                                       bool via_bdat);

}  // namespace smtpfault::proto
