// The sandbox (SPEC 4): "no io, os, package, debug, bytecode loading; instruction and memory
// limits; a script that errors, loops or exhausts memory fails its session ... and never takes
// the server down."
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;

TEST(sandbox, dangerous_globals_are_absent) {
  for (const char* name : {"io", "os", "package", "debug", "dofile", "loadfile", "collectgarbage",
                           "module", "string.dump", "(\"\").dump", "warn"}) {
    EXPECT_EQ(eval(std::string("type(") + name + ")"), "nil") << name;
  }
  // The sandbox's own require (modules_test.cpp), not Lua's, which searches package.path.
  EXPECT_EQ(eval("type(package) == 'nil' and require ~= nil and tostring(pcall(require, 'x'))"),
            "false");
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

// The transcript keeps a bounded number of lines; each line is bounded too.
TEST(sandbox, a_huge_log_line_is_cut) {
  driver d("function on_connect(s) smtp.log(string.rep('x', 10000)) end\n");
  ASSERT_EQ(d.start(hook::connect).st, status::done);
  ASSERT_EQ(d.script_log().size(), 1u);
  const auto& line = d.script_log()[0];
  EXPECT_EQ(line.substr(0, 12), "script: xxxx");
  // The length said is the script's text's, without the "script: " before it.
  EXPECT_TRUE(line.ends_with("xxx... (10000 octets)")) << line.substr(4000);
  EXPECT_EQ(line.size(),
            std::string("script: ").size() + 4096u + std::string("... (10000 octets)").size());
}

// An address would differ from run to run: the same seed must give the same transcript.
TEST(sandbox, a_logged_table_is_named_by_its_type_not_its_address) {
  driver d(
      "function on_connect(s)\n"
      "  smtp.log({}, string.len, setmetatable({}, {__name = 'thing'}), setmetatable({}, "
      "{__tostring = function() "
      "return 'mine' end}), 1, nil, true)\n"
      "end\n");
  ASSERT_EQ(d.start(hook::connect).st, status::done);
  ASSERT_EQ(d.script_log().size(), 1u);
  EXPECT_EQ(d.script_log()[0], "script: table function thing mine 1 nil true");
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
  // Mode "b" asks for bytecode only: text is not run in its place.
  EXPECT_THAT(eval("select(2, load('return 1', 'x', 'b'))"),
              HasSubstr("attempt to load a text chunk (mode is 'b'"));
  EXPECT_EQ(eval("load('return 1', 'x', 'bt')()"), "1");
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

// Messages handed to on_message while it sleeps are the host's octets, not the script's: four
// sessions' 3 MB messages at once, in a state limited to 8 MiB, all get their hook run.
TEST(memory_limit, messages_in_sleeping_hooks_do_not_use_up_the_limit) {
  auto sc = scenario::load(R"(
function on_message(s, m)
  local seen = { size = #m.data }
  smtp.sleep(1)
  return smtp.reply(250, "2.0.0", "seen " .. seen.size)
end
)",
                           "test.lua", memory_options());
  ASSERT_TRUE(sc) << sc.error();
  struct held {
    std::unique_ptr<session::transcript> log;
    std::unique_ptr<session::server_session> session;
    std::unique_ptr<session_binding> binding;
  };
  std::vector<held> sessions(4);
  std::string text;
  for (int i = 0; i < 3000; ++i)
    text += std::string(998, 'x') + "\r\n";  // 3 MB in lines the text limit allows

  for (auto& h : sessions) {
    session::server_options opts;
    opts.hooks = (*sc)->hooks();
    session::session_facts f;
    f.session_id = "m" + std::to_string(&h - sessions.data());
    h.log = std::make_unique<session::transcript>(f.session_id, 100);
    h.session = std::make_unique<session::server_session>(opts, f, *h.log);
    h.binding = (*sc)->open_session([](std::string) {});
    h.session->start(t0);
    const std::string input =
        "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
        "DATA\r\n" +
        text + ".\r\n";
    h.session->receive(input, t0);
    ASSERT_EQ(h.session->pending_message().data.size(), text.size());
    auto o = (*sc)->start(*h.binding, hook::message, *h.session);
    ASSERT_EQ(o.st, status::sleeping) << o.error;
  }
  for (auto& h : sessions) {
    auto o = (*sc)->resume(*h.binding, *h.session);
    ASSERT_EQ(o.st, status::done) << o.error;
    EXPECT_EQ(o.action.reply->lines.back(), "seen " + std::to_string(text.size()));
  }
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

// Lua calls a message handler where the error was raised: for the limit's own error that is
// inside the count hook, with hooks off, where a handler that looped could never be stopped.
TEST(instruction_limit, an_error_handler_that_loops_is_not_run_for_the_limits_error) {
  driver d(R"(
function on_connect(s)
  xpcall(function() while true do end end, function(e) while true do end end)
  return smtp.reply(250)
end
function on_helo(s) return smtp.reply(250) end
)");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("test.lua:3: instruction limit exceeded"));
  EXPECT_EQ(d.start(hook::helo).st, status::done);
}

TEST(instruction_limit, an_error_handler_that_loops_on_an_ordinary_error_is_stopped) {
  driver d(R"(
function on_connect(s)
  xpcall(function() error("x") end, function(e) while true do end end)
  return smtp.reply(250)
end
)");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("test.lua:3: instruction limit exceeded"));
}

TEST(sandbox, xpcall_hands_ordinary_errors_to_its_handler_and_results_back) {
  EXPECT_EQ(eval("select(2, xpcall(function() error('boom', 0) end, "
                 "function(e) return 'handled ' .. e end))"),
            "handled boom");
  EXPECT_EQ(eval("(function(...) return select('#', ...) .. ' ' .. tostring((...)) .. ' ' .. "
                 "select(2, ...) .. ' ' .. select(3, ...) end)"
                 "(xpcall(function(a, b) return a + b, 'two' end, tostring, 1, 2))"),
            "3 true 3 two");
  EXPECT_THAT(eval("select(2, pcall(xpcall, function() end))"),
              HasSubstr("bad argument #2 to 'xpcall' (function expected"));
}

TEST(sandbox, a_hook_may_sleep_inside_xpcall) {
  driver d(R"(
function on_connect(s)
  local ok, v = xpcall(function() smtp.sleep(0.5) return "woke" end, function(e) return e end)
  return smtp.reply(250, tostring(ok) .. " " .. v)
end
)");
  auto o = d.run(hook::connect);
  ASSERT_EQ(o.st, status::done) << o.error;
  EXPECT_EQ(o.action.reply->lines.at(0), "true woke");
  EXPECT_EQ(d.slept().size(), 1u);
}

// Loops inside Lua's C library, where the count hook never fires: they count their steps.
TEST(instruction_limit, library_loops_inside_c_are_counted) {
  for (const char* body :
       {"table.move({}, 1, math.maxinteger - 1, 2, {})", "table.move({}, -math.maxinteger, -2, 1)",
        "table.remove(setmetatable({}, {__len = function() return math.maxinteger end}), 1)",
        "table.insert(setmetatable({}, {__len = function() return 1 << 40 end}), 1, 'x')"}) {
    driver d(std::string("function on_connect(s)\n  ") + body + "\nend\n");
    auto o = d.start(hook::connect);
    ASSERT_EQ(o.st, status::failed) << body;
    EXPECT_THAT(o.error, HasSubstr("test.lua:2: instruction limit exceeded")) << body;
  }
  EXPECT_THAT(load_error("local x = 1\ntable.move({}, 1, math.maxinteger - 1, 2, {})\n"),
              HasSubstr("test.lua:2: instruction limit exceeded"));
}

// The host calls the smtp table's __index at load (to name a misspelt smtp.x), outside the
// limits: a scenario cannot replace it.
TEST(sandbox, the_smtp_tables_metatable_is_protected) {
  EXPECT_THAT(load_error("getmetatable(smtp).__index = function() while true do end end\n"
                         "function on_ehlo(s) return smtp.nosuch(1) end\n"),
              HasSubstr("test.lua:1: attempt to index a string value"));
  EXPECT_THAT(load_error("setmetatable(smtp, {})\n"),
              HasSubstr("test.lua:1: cannot change a protected metatable"));
  EXPECT_THAT(load_error("function on_ehlo(s) return smtp.rejct(554) end\n"),
              HasSubstr("smtp.rejct does not exist"));
}

// A hook's error is kept with its session and written to its transcript: bounded, as smtp.log's
// lines are.
TEST(sandbox, a_huge_error_message_is_cut) {
  driver d("function on_connect(s)\n  error(('x'):rep(1000000))\nend\n");
  const std::string error = connect_failure(d);
  EXPECT_LT(error.size(), 4300u);
  EXPECT_THAT(error, HasSubstr("test.lua:2: xxxx"));
  EXPECT_THAT(error, HasSubstr("... (1000012 octets)"));
}

TEST(sandbox, counted_library_functions_work_as_lua_s_own) {
  EXPECT_EQ(eval("#string.rep('', 1e15) .. #string.rep('', 1e15, '') .. ('ab'):rep(3, '-')"),
            "00ab-ab-ab");
  EXPECT_EQ(eval("table.concat(table.move({1, 2, 3}, 1, 3, 2), ',')"), "1,1,2,3");
  EXPECT_EQ(eval("(function() local t = {1, 2, 3} table.insert(t, 1, 0) table.insert(t, 9) "
                 "table.remove(t, 2) table.remove(t) return table.concat(t, ',') end)()"),
            "0,2,3");
  EXPECT_THAT(eval("select(2, pcall(table.insert, {}, 5, 1))"),
              HasSubstr("bad argument #2 to 'table.insert' (position out of bounds)"));
  EXPECT_THAT(eval("select(2, pcall(function() table.insert(nil, 1, 1) end))"),
              HasSubstr("test.lua:3: bad argument #1 to 'insert' (table expected, got nil)"));
  EXPECT_THAT(eval("select(2, pcall(function() table.insert('abc', 1, 1) end))"),
              HasSubstr("test.lua:3: bad argument #1 to 'table.insert' (table expected"));
  EXPECT_THAT(eval("select(2, pcall(table.move, {}, 'a'))"),
              HasSubstr("bad argument #2 to 'table.move' (number expected"));
  EXPECT_THAT(eval("select(2, pcall(string.rep))"), HasSubstr("bad argument #1 to 'string.rep'"));
  // Called from a script's line, as Lua names it there.
  EXPECT_THAT(eval("select(2, pcall(function() table.remove({}, 7) end))"),
              HasSubstr("test.lua:3: bad argument #2 to 'remove' (position out of bounds)"));
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

TEST(instruction_limit, a_coroutine_of_the_scripts_own_cannot_swallow_it) {
  driver d(R"(
function on_connect(s)
  coroutine.resume(coroutine.create(function() while true do end end))
end
)");
  EXPECT_THAT(connect_failure(d), HasSubstr("instruction limit exceeded"));
}

}  // namespace
}  // namespace smtpfault::script::testing
