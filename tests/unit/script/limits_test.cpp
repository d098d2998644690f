// The sandbox (SPEC 4): "no io, os, package, debug, bytecode loading; instruction and memory
// limits; a script that errors, loops or exhausts memory fails its session ... and never takes
// the server down."
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;

TEST(sandbox, dangerous_globals_are_absent) {
  for (const char* name : {"io", "os", "package", "debug", "dofile", "loadfile", "require",
                           "collectgarbage", "module", "string.dump", "(\"\").dump"}) {
    EXPECT_EQ(eval(std::string("type(") + name + ")"), "nil") << name;
  }
}

TEST(sandbox, safe_libraries_are_present) {
  for (const char* name : {"string.format", "table.concat", "math.floor", "utf8.char",
                           "coroutine.wrap", "pcall", "setmetatable", "load"}) {
    EXPECT_EQ(eval(std::string("type(") + name + ")"), "function") << name;
  }
}

TEST(sandbox, a_loop_that_only_sleeps_reaches_the_instruction_limit_too) {
  // Lua restarts its count at each resumption: each wait counts instead.
  driver d("function on_connect(s)\n  while true do smtp.sleep(0) end\nend\n");
  auto out = d.start(hook::connect);
  int sleeps = 0;
  while (out.st == status::sleeping && sleeps < 1'000'000) {
    ++sleeps;
    out = d.resume();
  }
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error, HasSubstr("test.lua:2: instruction limit exceeded"));
  EXPECT_LT(sleeps, 30'000);  // 2 million instructions at 100 a wait, with the loop's own
  // The session's next hook call starts afresh, with its own budget.
  EXPECT_EQ(d.start(hook::connect).st, status::sleeping);
}

TEST(sandbox, an_endless_loop_a_pcall_caught_is_named_not_the_line_after_it) {
  driver d(
      "function on_connect(s)\n  pcall(function() while true do end end)\n"
      "  smtp.log('after')\nend\n");
  auto out = d.start(hook::connect);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error, HasSubstr("test.lua:2: instruction limit exceeded"));
}

// A finalizer runs whenever the collector gets to it, between hooks too, where no limit
// applies: one that loops would hang the thread for good.
TEST(sandbox, finalizers_are_refused_other_metatables_kept) {
  driver d(
      "function on_connect(s)\n  local t = setmetatable({}, { __index = { x = 1 } })\n"
      "  assert(t.x == 1)\n"
      "  setmetatable({}, { __gc = function() while true do end end })\nend\n");
  auto out = d.start(hook::connect);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error, HasSubstr("test.lua:4: setmetatable: __gc finalizers are not available"));
  // Its own argument errors still name it.
  EXPECT_THAT(eval("select(2, pcall(setmetatable, 1, {}))"),
              HasSubstr("bad argument #1 to 'setmetatable'"));
  EXPECT_THAT(eval("select(2, pcall(setmetatable, {}, 5))"),
              HasSubstr("bad argument #2 to 'setmetatable' (nil or table expected"));
}

TEST(sandbox, load_refuses_binary_chunks) {
  EXPECT_EQ(eval("load('\\27LuaT\\0\\25\\147\\r\\n\\26\\n') == nil"), "true");
  EXPECT_THAT(eval("select(2, load('\\27Lua'))"), HasSubstr("binary chunk"));
}

TEST(sandbox, load_refuses_reader_functions) {
  EXPECT_THAT(eval("load(function() return nil end)"), HasSubstr("only strings"));
}

TEST(sandbox, load_of_text_works_with_an_environment) {
  EXPECT_EQ(eval("load('return 1 + 2')()"), "3");
  EXPECT_EQ(eval("load('return x', 'chunk', 't', {x = 5})()"), "5");
  EXPECT_EQ(eval("select(2, load('syntax error here', '=snippet'))"),
            "snippet:1: syntax error near 'error'");
}

// Memory ---------------------------------------------------------------------------------------

scenario_options memory_options() {
  scenario_options o = quick_options();
  o.limits.memory_bytes = 8 * 1024 * 1024;
  o.limits.instructions = 50'000'000;
  return o;
}

TEST(memory_limit, one_huge_string_fails_the_hook) {
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 1e9)
  return smtp.reply(250, #big)
end
function on_helo(s) return smtp.reply(250, "still here") end
)",
           memory_options());
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("memory limit"));
  EXPECT_THAT(o.error, HasSubstr("test.lua:3:"));
  // The state is usable again: the next hook call succeeds.
  auto next = d.start(hook::helo);
  ASSERT_EQ(next.st, status::done) << next.error;
  EXPECT_EQ(next.action.reply->lines, std::vector<std::string>{"still here"});
}

TEST(memory_limit, a_growing_table_fails_the_hook) {
  driver d(R"(
local keep = {}
function on_connect(s)
  for i = 1, 1e7 do keep[#keep + 1] = string.rep("x", 1000) .. i end
end
function on_helo(s) keep = {} return smtp.reply(250) end
)",
           memory_options());
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("memory limit"));
  EXPECT_EQ(d.start(hook::helo).st, status::done);
  // Once the table is released the memory comes back.
  EXPECT_EQ(d.start(hook::connect).st, status::failed);
  EXPECT_EQ(d.start(hook::helo).st, status::done);
}

TEST(memory_limit, deep_recursion_fails_cleanly) {
  driver d(R"(
function on_connect(s)
  local function f(n) return f(n + 1) + 1 end
  f(1)
end
function on_helo(s) return smtp.reply(250) end
)",
           memory_options());
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_TRUE(o.error.find("stack overflow") != std::string::npos ||
              o.error.find("memory limit") != std::string::npos)
      << o.error;
  EXPECT_THAT(o.error, HasSubstr("test.lua:3:"));
  EXPECT_EQ(d.start(hook::helo).st, status::done);
}

TEST(memory_limit, exhausting_memory_at_load_time_is_a_load_error) {
  auto err = load_error("local s = string.rep('x', 1e9)\n", memory_options());
  EXPECT_THAT(err, HasSubstr("test.lua:1:"));
  EXPECT_THAT(err, HasSubstr("memory limit"));
}

TEST(memory_limit, copies_that_are_garbage_already_do_not_count) {
  // At most 8 MiB live at once, 160 MiB made in all under a 16 MiB limit: a refusal of one of
  // Lua's own allocations (a concatenation's result) makes it collect and ask again, and the
  // copies no longer referenced are gone by then. (The library's string buffers, as upper()
  // uses, ask once: garbage can still count against the limit there.)
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 4 * 1024 * 1024)
  local n = 0
  for i = 1, 40 do n = n + #(big .. i) end
  return smtp.reply(250, tostring(n))
end
)");
  auto o = d.start(hook::connect);
  EXPECT_EQ(o.st, status::done) << o.error;
}

TEST(memory_limit, pcall_in_a_coroutine_cannot_swallow_it_either) {
  // After the caught refusal, copies that fit (once collected garbage is gone) must not make
  // the refusal as good as never made.
  driver d(R"(
function on_connect(s)
  local big = string.rep("x", 6 * 1024 * 1024)
  local caught = 0
  coroutine.wrap(function()
    for round = 1, 3 do
      if not pcall(function() return big .. big .. big end) then caught = caught + 1 end
      for i = 1, 4 do local copy = big:sub(1, 4 * 1024 * 1024) end
    end
  end)()
  return smtp.reply(250, tostring(caught))
end
)");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("memory limit exceeded"));
}

TEST(memory_limit, pcall_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  local ok = pcall(string.rep, "x", 1e9)
  return smtp.reply(250, tostring(ok))
end
)",
           memory_options());
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, ::testing::StartsWith("test.lua:"));
  EXPECT_THAT(o.error, HasSubstr("memory limit"));
}

// Instructions ---------------------------------------------------------------------------------

TEST(instruction_limit, endless_loop_fails_the_hook) {
  driver d(
      "function on_connect(s)\n  while true do end\nend\n"
      "function on_helo(s) return smtp.reply(250) end\n");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("instruction limit"));
  EXPECT_THAT(o.error, HasSubstr("test.lua:2:"));
  EXPECT_EQ(d.start(hook::helo).st, status::done);
}

TEST(instruction_limit, pcall_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  pcall(function() while true do end end)
  return smtp.reply(250)
end
)");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("instruction limit"));
}

TEST(instruction_limit, an_error_handler_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  for i = 1, 100 do
    xpcall(function() while true do end end, function(e) return e end)
  end
  return smtp.reply(250)
end
)");
  EXPECT_EQ(d.start(hook::connect).st, status::failed);
}

TEST(instruction_limit, a_nested_coroutine_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  local co = coroutine.create(function() while true do end end)
  local ok = coroutine.resume(co)
  for i = 1, 1e6 do end
  return smtp.reply(250, tostring(ok))
end
)");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("instruction limit"));
}

TEST(instruction_limit, budget_is_per_call) {
  // Each call may spend most of the budget; the calls together spend far more than one budget.
  driver d("function on_connect(s)\n  for i = 1, 300000 do end\nend\n");
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(d.start(hook::connect).st, status::done) << i;
}

TEST(instruction_limit, endless_loop_at_load_time_fails_fast) {
  scenario_options o = quick_options();
  o.limits.load_instructions = 100'000;
  auto err = load_error("local x = 1\nwhile true do end\n", o);
  EXPECT_THAT(err, HasSubstr("test.lua:2:"));
  EXPECT_THAT(err, HasSubstr("instruction limit"));
}

TEST(instruction_limit, sleeping_at_load_time_is_refused) {
  auto err = load_error("smtp.sleep(1)\n");
  EXPECT_THAT(err, HasSubstr("test.lua:1:"));
  EXPECT_THAT(err, HasSubstr("only"));
}

// The error on_connect failed with, "" when it did not fail.
std::string connect_failure(driver& d) {
  const auto o = d.start(hook::connect);
  return o.st == status::failed ? o.error : "";
}

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

TEST(instruction_limit, a_coroutine_of_the_scripts_own_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  coroutine.resume(coroutine.create(function() while true do end end))
end
)");
  EXPECT_THAT(connect_failure(d), HasSubstr("instruction limit exceeded"));
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

TEST(time_limit, applies_while_the_file_loads) {
  auto err = load_error(
      "local big = string.rep('x', 4 * 1024 * 1024)\n"
      "for i = 1, 1e9 do local upper = big:upper() end\n",
      short_run_time());
  EXPECT_THAT(err, HasSubstr("test.lua:2: time limit exceeded"));
}

}  // namespace
}  // namespace smtpfault::script::testing
