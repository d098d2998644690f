// Seconds as given by people and scripts, turned into the milliseconds timers take.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

namespace smtpfault::proto {

// Saturated: a huge or infinite number of seconds becomes a century, which every timer can
// hold, instead of overflowing into a negative duration that would fire at once. NaN and
// negative values are 0. round_up: a deadline of 0.0001 s is 1 ms, not 0.
inline std::chrono::milliseconds millis_from_seconds(double seconds, bool round_up = false) {
  constexpr double century_ms = 100.0 * 365 * 24 * 3600 * 1000;
  const double ms = seconds * 1000;
  if (!(ms > 0)) return std::chrono::milliseconds(0);
  if (ms >= century_ms) return std::chrono::milliseconds(static_cast<long long>(century_ms));
  return std::chrono::milliseconds(
      static_cast<long long>(round_up ? std::ceil(ms) : std::llround(ms)));
}

// "5", "0.2", "30": seconds as a person writes them (%g), for messages.
inline std::string seconds_text(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", seconds);
  return buf;
}

}  // namespace smtpfault::proto
