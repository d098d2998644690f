// A number as a person writes it: the shortest text that reads back as the same double ("0.5",
// "100", "1e+21"), not printf's rounding nor JSON's exponent form ("5E-1").
#pragma once

#include <charconv>
#include <string>

namespace smtpfault::proto {

inline std::string number_text(double x) {
  char digits[32];
  const auto written = std::to_chars(digits, digits + sizeof digits, x);
  return std::string(digits, written.ptr);
}

}  // namespace smtpfault::proto
