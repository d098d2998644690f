// CRLF framing of command lines with a length limit (RFC 5321 section 4.5.3.1.4).
#pragma once

#include <cstddef>
#include <string_view>

namespace smtpfault::proto {

// Splits a byte stream into lines. Lines end at LF; a line whose LF has no CR before it is
// reported with bare_lf set (the server notes it as an anomaly). A line longer than the limit
// is discarded up to its end and reported once as too_long, so memory stays bounded even for an
// endless line.
class line_reader {
 public:
  explicit line_reader(std::size_t max_line) : max_line_(max_line) {}

  enum class status { need_more, line, too_long };
  struct result {
    status st = status::need_more;
    std::string_view line;  // without the line ending; valid while the input is
    std::size_t consumed = 0;
    bool bare_lf = false;
  };

  // Looks at input (bytes not yet consumed). The caller drops result.consumed bytes and calls
  // again. With need_more, consumed may be non-zero (bytes of an over-long line discarded).
  result next(std::string_view input);

  void set_max_line(std::size_t max_line) { max_line_ = max_line; }
  std::size_t max_line() const { return max_line_; }
  bool discarding() const { return discarding_; }

 private:
  std::size_t max_line_;
  bool discarding_ = false;
};

}  // namespace smtpfault::proto
