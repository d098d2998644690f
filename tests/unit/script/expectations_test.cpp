// The built-in expectations on hand-made runs.
#include "script/expectations.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace smtpfault::script {
namespace {

using ::testing::HasSubstr;

TEST(Expectations, QuitIsNotMetWhenTheClientNeverConnected) {
  expectations e;
  e.quit = true;
  auto results = evaluate(e, run_outcome{});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].name, "quit");
  EXPECT_FALSE(results[0].passed);
  EXPECT_THAT(results[0].detail, HasSubstr("never connected"));
}

}  // namespace
}  // namespace smtpfault::script
