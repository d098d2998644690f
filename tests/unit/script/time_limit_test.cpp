// The time limit of a hook call (SPEC 4, "instruction and memory limits"; the clock stops what
// the instruction count cannot: work on long strings, library calls that allocate nothing).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;

// Work on a long string is one instruction whatever its length: loops of it stay far within
// the instruction limit (2 million here: hours of upper() on 4 MB), so only the clock stops them.
scenario_options short_run_time() {
  scenario_options o = quick_options();
  o.limits.run_time = std::chrono::milliseconds(200);
  return o;
}

TEST(time_limit, a_loop_of_work_on_a_long_string_fails_the_hook_naming_its_line) {
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 4 * 1024 * 1024)
  for i = 1, 1e9 do local upper = big:upper() end
end
function on_helo(s) return smtp.reply(250) end
)",
           short_run_time());
  EXPECT_THAT(connect_failure(d), HasSubstr("test.lua:4: time limit exceeded: ran for over 0.2 s"));
  EXPECT_EQ(d.start(hook::helo).st, status::done);
}

TEST(time_limit, a_loop_of_work_that_allocates_nothing_is_stopped_too) {
  // utf8.len on a long string: no allocation and no string pattern; the instruction count
  // hook looks at the clock.
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 256 * 1024)
  local n = 0
  while true do
    if utf8.len(big) then n = n + 1 end
  end
end
)",
           short_run_time());
  EXPECT_THAT(connect_failure(d), HasSubstr("time limit exceeded"));
}

TEST(time_limit, pcall_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 4 * 1024 * 1024)
  pcall(function() for i = 1, 1e9 do local upper = big:upper() end end)
  return smtp.reply(250)
end
)",
           short_run_time());
  EXPECT_THAT(connect_failure(d), HasSubstr("time limit exceeded"));
}

TEST(time_limit, an_error_handler_that_loops_is_stopped_too) {
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 4 * 1024 * 1024)
  xpcall(function() error("x") end, function(e) for i = 1, 1e9 do local u = big:upper() end end)
  return smtp.reply(250)
end
)",
           short_run_time());
  EXPECT_THAT(connect_failure(d), HasSubstr("time limit exceeded"));
}

// A limit hit in a coroutine the hook made: coroutine.resume catches the error, and the hook
// returns (the default reply) before its own next instruction or call could fail. The run fails
// all the same.
TEST(time_limit, a_coroutine_of_the_scripts_own_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 256 * 1024)
  coroutine.resume(coroutine.create(function() while true do utf8.len(big) end end))
end
)",
           short_run_time());
  EXPECT_THAT(connect_failure(d), HasSubstr("time limit exceeded"));
}

// A clock the tests move: each read returns fake_time, then adds fake_step to it.
std::chrono::nanoseconds fake_time{};
std::chrono::nanoseconds fake_step{};
std::chrono::nanoseconds fake_clock() {
  const auto t = fake_time;
  fake_time += fake_step;
  return t;
}

scenario_options fake_clock_options() {
  fake_time = {};
  fake_step = {};
  scenario_options o = quick_options();
  o.limits.clock = &fake_clock;
  return o;
}

TEST(time_limit, waits_do_not_count) {
  driver d(R"(
function on_connect(s)
  smtp.sleep(1)
  local big = string.rep("x", 1024 * 1024)  -- a large allocation: the clock is read
  return smtp.reply(250)
end
)",
           fake_clock_options());
  ASSERT_EQ(d.start(hook::connect).st, status::sleeping);
  fake_time += std::chrono::hours(1);
  auto o = d.resume();
  EXPECT_EQ(o.st, status::done) << o.error;
}

TEST(time_limit, the_runs_of_one_hook_call_add_up) {
  // Every read moves the clock by a second: each run between two waits takes one (its start
  // and its end are read), and a wait now and then must not start the limit again.
  driver d("function on_connect(s)\n  while true do\n    smtp.sleep(0)\n  end\nend\n",
           fake_clock_options());
  fake_step = std::chrono::seconds(1);  // from here: the scenario has loaded
  auto o = d.start(hook::connect);
  int resumes = 0;
  while (o.st == status::sleeping && resumes < 100) {
    ++resumes;
    o = d.resume();
  }
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("test.lua:3: time limit exceeded: ran for over 5 s"));
  EXPECT_LE(resumes, 6);
}

TEST(time_limit, what_earlier_runs_of_the_call_used_is_not_given_again) {
  // The clock moves 100 ms per read, and it is read before every call: the first run spends
  // over 3 s of the 5, so after the wait the loop gets what is left (under 20 calls), not a
  // fresh 5 s (about 50).
  driver d(R"(
calls = 0
function on_connect(s)
  local t = {3, 1, 2}
  for i = 1, 30 do table.sort(t) end
  smtp.sleep(0)
  while true do
    calls = calls + 1
    table.sort(t)
  end
end
function on_helo(s) return smtp.reply(250, tostring(calls)) end
)",
           fake_clock_options());
  fake_step = std::chrono::milliseconds(100);  // from here: the scenario has loaded
  auto o = d.run(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("time limit exceeded"));
  fake_step = {};
  auto calls = d.run(hook::helo);
  ASSERT_EQ(calls.st, status::done);
  const int n = std::stoi(text_of(calls));
  EXPECT_GE(n, 1);
  EXPECT_LE(n, 20);
}

// Each read of the clock moves it by 100 ms. Read only every 1000 instructions, a loop of
// calls would make thousands of them past the limit; read before every call, it stops within
// one call of it, whichever library function it calls.
void expect_a_loop_of_calls_stops_within_one_call(const char* call) {
  scenario_options o = fake_clock_options();
  o.limits.instructions = 1'000'000'000'000;
  driver d(std::string(R"(
calls = 0
function on_connect(s)
  local t, text = {3, 1, 2}, "abc"
  while true do
    calls = calls + 1
    )") + call +
               R"(
  end
end
function on_helo(s) return smtp.reply(250, tostring(calls)) end
)",
           o);
  fake_step = std::chrono::milliseconds(100);  // from here: the scenario has loaded
  EXPECT_THAT(connect_failure(d), HasSubstr("test.lua:7: time limit exceeded")) << call;
  fake_step = {};
  auto calls = d.run(hook::helo);
  ASSERT_EQ(calls.st, status::done);
  EXPECT_LE(std::stoi(text_of(calls)), 51) << call;  // 5 s at 100 ms a read, the start included
}

TEST(time_limit, a_loop_of_library_calls_stops_within_one_call_of_it) {
  for (const char* call : {"table.sort(t)", "local u = text:upper()", "local n = utf8.len(text)",
                           "local r = string.rep(text, 2)", "local c = table.concat(t)"}) {
    expect_a_loop_of_calls_stops_within_one_call(call);
  }
}

TEST(time_limit, argument_errors_of_library_functions_name_them) {
  driver d("function on_connect(s)\n  table.sort(nil)\nend\n");
  EXPECT_THAT(connect_failure(d),
              HasSubstr("test.lua:2: bad argument #1 to 'sort' (table expected"));
}

TEST(time_limit, is_per_hook_call) {
  // 100 ms per read of the clock: one call of the hook reads it a few times, ten of them
  // add up to more than the 5 s that each may take.
  driver d(
      "function on_connect(s)\n  smtp.sleep(0)\n  smtp.sleep(0)\n  return smtp.reply(250)\n"
      "end\n",
      fake_clock_options());
  fake_step = std::chrono::milliseconds(100);  // from here: the scenario has loaded
  const auto start = fake_time;
  for (int call = 0; call < 10; ++call)
    EXPECT_EQ(d.run(hook::connect).st, status::done) << call;
  EXPECT_GT(fake_time - start, std::chrono::seconds(5));
}

TEST(time_limit, a_string_pattern_reads_the_clock_too) {
  // One find over a long text that almost matches everywhere: one instruction, seconds of
  // steps; with an instruction limit that its steps never reach, only the clock stops it.
  scenario_options o = short_run_time();
  o.limits.instructions = 1'000'000'000'000;
  driver d(R"(
function on_connect(s)
  local text = string.rep("a", 64 * 1024)
  while true do
    local found = text:find("a-b")
  end
end
)",
           o);
  EXPECT_THAT(connect_failure(d), HasSubstr("time limit exceeded"));
}

// The parser runs no instructions, so no hook fires while it works: text made to be slow to
// compile (each label compared with every earlier one of its function) is fed to it in pieces,
// each of which looks at the clock first.
TEST(time_limit, applies_while_the_file_compiles) {
  std::string code;
  for (int f = 0; f < 10; ++f) {
    code += "local function f" + std::to_string(f) + "()\n";
    for (int i = 0; i < 32000; ++i)
      code += "::l" + std::to_string(i) + ":: do end ";
    code += "\nend\n";
  }
  EXPECT_THAT(load_error(code, short_run_time()),
              HasSubstr("test.lua: time limit exceeded while compiling (over 0.2 s"));
}

TEST(time_limit, applies_while_the_file_loads) {
  auto err = load_error(
      "local big = string.rep('x', 4 * 1024 * 1024)\n"
      "for i = 1, 1e9 do local upper = big:upper() end\n",
      short_run_time());
  EXPECT_THAT(err, HasSubstr("test.lua:2: time limit exceeded"));
}

}  // namespace
}  // namespace smtpfault::script::testing
