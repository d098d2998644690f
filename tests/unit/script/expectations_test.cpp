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
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].name, "quit");
  EXPECT_FALSE(results[1].passed);
  EXPECT_THAT(results[1].detail, HasSubstr("never connected"));
}

// A mailer that fails to start must not pass a scenario that expects it to fail and deliver
// nothing: it was never exercised.
TEST(Expectations, NothingIsMetWhenTheClientNeverConnected) {
  expectations e;
  e.delivered = count_range{0, 0};
  e.exit = "failure";
  run_outcome run;
  run.exit_codes = {127};
  auto results = evaluate(e, run);
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results[0].name, "connected");
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].detail, "expected the client to connect; it never did (exit status 127)");
}

TEST(Expectations, TheConnectionCheckIsThereOnlyWithoutSessions) {
  expectations e;
  e.delivered = count_range{0, 0};
  run_outcome run;
  run.sessions.emplace_back();
  for (const auto& c : evaluate(e, run))
    EXPECT_NE(c.name, "connected");
}

}  // namespace
}  // namespace smtpfault::script
