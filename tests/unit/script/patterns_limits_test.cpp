// A string pattern that backtracks runs inside C, where the instruction-count hook never fires:
// its matching steps are charged to the hook call's budget instead, so it fails the call like an
// endless loop (451 4.3.0 for that session) and never hangs the thread.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;
using clock_type = std::chrono::steady_clock;

constexpr const char* pattern_limit = "instruction limit exceeded in a string pattern";

std::chrono::milliseconds since(clock_type::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
}

TEST(pattern_limit, a_backtracking_find_fails_the_hook_quickly) {
  driver d(R"(
function on_connect(s)
  local found = string.rep("a", 40000):find(".-.-.-.-b")
  return smtp.reply(250, tostring(found))
end
function on_helo(s) return smtp.reply(250, "l at " .. ("hello"):find("l+")) end
)");
  const auto start = clock_type::now();
  auto out = d.start(hook::connect);
  EXPECT_LT(since(start).count(), 1000);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error, HasSubstr(std::string("test.lua:3: ") + pattern_limit));
  // The next hook call has its own budget.
  auto next = d.start(hook::helo);
  ASSERT_EQ(next.st, status::done) << next.error;
  EXPECT_EQ(next.action.reply->lines, std::vector<std::string>{"l at 3"});
}

TEST(pattern_limit, the_default_budget_stops_it_well_under_a_second) {
  scenario_options o = quick_options();
  o.limits.instructions = sandbox_limits{}.instructions;
  driver d("function on_connect(s)\n  return ('a'):rep(40000):match('.-.-.-.-b')\nend\n", o);
  const auto start = clock_type::now();
  auto out = d.start(hook::connect);
  EXPECT_LT(since(start).count(), 1000);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error, HasSubstr(std::string("test.lua:2: ") + pattern_limit));
}

TEST(pattern_limit, pcall_in_a_loop_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  local subject = string.rep("a", 40000)
  for i = 1, 100 do
    pcall(string.find, subject, ".-.-.-.-b")
  end
  return smtp.reply(250, "swallowed")
end
function on_helo(s) return smtp.reply(250) end
)");
  const auto start = clock_type::now();
  auto out = d.start(hook::connect);
  EXPECT_LT(since(start).count(), 1000);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error, HasSubstr(std::string("test.lua:5: ") + pattern_limit));
  EXPECT_EQ(d.start(hook::helo).st, status::done);
}

TEST(pattern_limit, gmatch_and_gsub_are_bounded_too) {
  for (const char* call :
       {"for w in string.rep('a', 40000):gmatch('.-.-.-.-b') do end",
        "string.rep('a', 40000):gsub('.-.-.-.-b', 'x')", "string.rep('(', 200000):find('%b()')",
        "string.rep('a', 3e6):find(string.rep('a', 2e5) .. 'b', 1, true)",
        // A long set is read through for every character tried against it.
        "string.rep('a', 1e5):find('[' .. string.rep('b', 1e5) .. ']')",
        "string.rep('a', 1e5):find('[' .. string.rep('b', 1e5) .. ']*c')",
        "string.rep('a', 1e5):find('%f[' .. string.rep('b', 1e5) .. ']')",
        // A huge pattern without specials, looked through on every call of a short loop.
        "local p = string.rep('x', 4e6) for i = 1, 1e6 do ('a'):find(p) end"}) {
    driver d(std::string("function on_connect(s)\n  ") + call + "\nend\n");
    const auto start = clock_type::now();
    auto out = d.start(hook::connect);
    EXPECT_LT(since(start).count(), 1000) << call;
    ASSERT_EQ(out.st, status::failed) << call;
    EXPECT_THAT(out.error, HasSubstr(std::string("test.lua:2: ") + pattern_limit)) << call;
  }
}

TEST(pattern_limit, a_replacement_function_that_loops_meets_the_ordinary_limit) {
  driver d(R"(
function on_connect(s)
  return smtp.reply(250, (("abc"):gsub(".", function(c)
    while true do end
  end)))
end
)");
  auto out = d.start(hook::connect);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error,
              HasSubstr("test.lua:4: instruction limit exceeded (possible endless loop)"));
}

TEST(pattern_limit, ordinary_matching_spends_little_of_the_budget) {
  // 2 million instructions: a few thousand ordinary matches fit easily.
  driver d(R"(
function on_connect(s)
  local n = 0
  for i = 1, 2000 do
    if ("RCPT TO:<user" .. i .. "@example.org>"):find("reject-me", 1, true) then n = n + 1 end
    local user, domain = ("user" .. i .. "@example.org"):match("^([^@]+)@(.+)$")
    n = n + #domain
  end
  return smtp.reply(250, tostring(n))
end
)");
  auto out = d.start(hook::connect);
  ASSERT_EQ(out.st, status::done) << out.error;
  EXPECT_EQ(out.action.reply->lines, std::vector<std::string>{"22000"});
}

TEST(pattern_limit, no_limit_outside_a_hook_call) {
  // At load time the load budget applies; a pattern within it works as usual.
  EXPECT_EQ(load_error("local a, b = ('x = 1'):match('(%w+) = (%w+)')\nassert(b == '1')\n"), "");
}

}  // namespace
}  // namespace smtpfault::script::testing
