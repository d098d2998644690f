#include "proto/line_reader.hpp"

#include <cstring>

namespace smtpfault::proto {

// max_line 0 means unlimited. An over-long line is dropped as it arrives, so the caller never
// holds more than max_line octets of it.
line_reader::result line_reader::next(std::string_view input) {
  result r;
  const void* found = input.empty() ? nullptr : std::memchr(input.data(), '\n', input.size());
  if (found == nullptr) {
    if (discarding_ || (max_line_ != 0 && input.size() >= max_line_)) {
      // Even if the LF arrived next, the line would be over the limit (it counts the LF).
      discarding_ = true;
      r.consumed = input.size();
    }
    return r;
  }
  std::size_t lf = static_cast<const char*>(found) - input.data();
  r.consumed = lf + 1;
  if (discarding_ || (max_line_ != 0 && lf + 1 > max_line_)) {
    discarding_ = false;
    r.st = status::too_long;
    return r;
  }
  r.st = status::line;
  r.bare_lf = lf == 0 || input[lf - 1] != '\r';
  r.line = input.substr(0, r.bare_lf ? lf : lf - 1);
  return r;
}

}  // namespace smtpfault::proto
