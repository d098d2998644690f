#include "proto/body_scan.hpp"

#include "proto/message_needs.hpp"

namespace smtpfault::proto {

body_scan scan_body(std::string_view body, std::size_t max_text_line) {
  body_scan out;
  auto note = [&](anomaly_kind k, std::size_t at) {
    ++out.anomaly_count;
    if (out.anomalies.size() < data_reader::max_anomalies) out.anomalies.push_back({k, at});
  };
  // As in DATA, only CRLF ends a line, and a line's length counts its CRLF.
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (max_text_line != 0 && i - line_start == max_text_line) {
      out.line_too_long = true;
      note(anomaly_kind::long_line, i);
    }
    const char c = body[i];
    if (c == '\r') {
      if (i + 1 < body.size() && body[i + 1] == '\n') {
        if (max_text_line != 0 && i + 1 - line_start == max_text_line) {
          out.line_too_long = true;  // the LF is the octet past the limit
          note(anomaly_kind::long_line, i + 1);
        }
        line_start = i + 2;
        ++i;
      } else {
        note(anomaly_kind::bare_cr, i);
      }
    } else if (c == '\n') {
      note(anomaly_kind::bare_lf, i);
    } else if (c == '\0') {
      note(anomaly_kind::nul, i);
    }
  }
  // A last line without its CRLF: it would need two more octets, so more than the limit less
  // two is over it (longer ones were found above).
  const std::size_t last = body.size() - line_start;
  if (max_text_line > 2 && last > max_text_line - 2 && last <= max_text_line) {
    out.line_too_long = true;
    note(anomaly_kind::long_line, line_start + max_text_line - 2);
  }
  return out;
}

std::vector<anomaly> scan_declarations(std::string_view body, bool eight_bit_declared,
                                       bool via_bdat) {
  std::vector<anomaly> found;
  if (!eight_bit_declared) {
    const std::size_t at = first_8bit(body);
    if (at != std::string_view::npos) found.push_back({anomaly_kind::undeclared_8bit, at});
  }
  if (via_bdat) {
    const std::size_t at = body.starts_with(".\r\n") ? 0 : body.find("\r\n.\r\n");
    if (at != std::string_view::npos)
      found.push_back({anomaly_kind::dot_line, at == 0 ? 0 : at + 2});
  }
  return found;
}

}  // namespace smtpfault::proto
