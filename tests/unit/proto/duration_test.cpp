#include "proto/duration.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace smtpfault::proto {
namespace {

using std::chrono::milliseconds;

TEST(duration, seconds_become_milliseconds) {
  EXPECT_EQ(millis_from_seconds(1.5), milliseconds(1500));
  EXPECT_EQ(millis_from_seconds(0.0004), milliseconds(0));
  EXPECT_EQ(millis_from_seconds(0.0004, true), milliseconds(1));  // a deadline is never 0
}

TEST(duration, huge_values_saturate_instead_of_overflowing) {
  // An overflow would make a negative duration, a timer that fires at once.
  const auto century = millis_from_seconds(100.0 * 365 * 24 * 3600);
  EXPECT_GT(century.count(), 0);
  EXPECT_EQ(millis_from_seconds(1e300), century);
  EXPECT_EQ(millis_from_seconds(std::numeric_limits<double>::infinity()), century);
  EXPECT_EQ(millis_from_seconds(9.3e15, true), century);
}

TEST(duration, nothing_sensible_is_zero) {
  EXPECT_EQ(millis_from_seconds(-1), milliseconds(0));
  EXPECT_EQ(millis_from_seconds(std::numeric_limits<double>::quiet_NaN()), milliseconds(0));
}

}  // namespace
}  // namespace smtpfault::proto
