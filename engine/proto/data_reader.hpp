// The DATA phase: dot-unstuffing and strict end-of-data detection (RFC 5321 4.1.1.4, 4.5.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace smtpfault::proto {

// unstuffed_dot: a line began with a single "." followed by other text, so the client did not
// dot-stuff it (RFC 5321 4.5.2) and the server, by the rules, dropped that dot.
enum class anomaly_kind {
  bare_cr,
  bare_lf,
  nul,
  long_line,
  unstuffed_dot,
  undeclared_8bit,  // an octet over 127 where MAIL declared no BODY=8BITMIME (RFC 6152 3)
  dot_line,         // a line "." in BDAT data: plain content there (RFC 3030 2)
};
const char* anomaly_name(anomaly_kind k);

struct anomaly {
  anomaly_kind kind;
  std::uint64_t offset;  // octets since the start of the message data on the wire
};

// Only CRLF "." CRLF ends the data; the CRLF after the DATA command counts as the first one,
// so an empty message is ".\r\n". Bare CR, bare LF and NUL are kept in the body and recorded
// (at most max_anomalies of them), and "\n.\n" and friends never end the data (SMTP smuggling).
class data_reader {
 public:
  // max_text_line: octets incl. CRLF, not counting a stuffed dot; 0 = unlimited.
  // max_size: body octets after which content is discarded (size_exceeded); 0 = unlimited.
  data_reader(std::size_t max_text_line, std::uint64_t max_size);

  struct result {
    std::size_t consumed = 0;
    bool done = false;  // the terminating CRLF.CRLF was consumed
  };
  // Appends unstuffed content to body (excluding the final ".\r\n").
  result feed(std::string_view input, std::string& body);

  bool size_exceeded() const { return size_exceeded_; }
  bool line_too_long() const { return line_too_long_; }
  std::uint64_t body_size() const { return body_size_; }  // counted even when discarded
  const std::vector<anomaly>& anomalies() const { return anomalies_; }
  std::uint64_t anomaly_count() const { return anomaly_count_; }
  // Octets the whole-line search has looked at: at most about once each octet fed.
  std::uint64_t octets_searched() const { return searched_; }

  static constexpr std::size_t max_anomalies = 64;

 private:
  bool step(std::string& body, char c);
  void in_line_octet(std::string& body, char c);
  void append(std::string& body, std::string_view run, std::uint64_t offset);
  void count_line(std::size_t n, std::uint64_t offset);
  void keep(std::string& body, std::string_view run);
  void note(anomaly_kind k, std::uint64_t offset);

  enum class state { line_start, in_line, cr, dot, dot_cr, finished };
  state st_ = state::line_start;
  std::size_t max_text_line_;
  std::uint64_t max_size_;
  std::uint64_t wire_offset_ = 0;
  std::uint64_t body_size_ = 0;
  std::size_t line_len_ = 0;
  bool size_exceeded_ = false;
  bool line_too_long_ = false;
  std::vector<anomaly> anomalies_;
  std::uint64_t anomaly_count_ = 0;
  std::uint64_t searched_ = 0;
};

}  // namespace smtpfault::proto
