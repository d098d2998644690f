// require(): a scenario's (or client script's) modules, from its own folder, as text, once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "harness.hpp"
#include "script/client_script.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class modules : public ::testing::Test {
 protected:
  void SetUp() override {
    // Short: Lua shortens a chunk name past 60 characters in its messages ("...lib/a.lua:1:").
    static int n = 0;
    dir_ = std::filesystem::path("/tmp") /
           ("sfm-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    std::filesystem::create_directories(dir_ / "lib");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  scenario_options in_folder() {
    auto o = quick_options();
    o.module_folder = dir_.string();
    return o;
  }
  std::string lib(const std::string& file) { return (dir_ / "lib" / file).string(); }

  std::filesystem::path dir_;
};

TEST_F(modules, a_module_runs_once_and_every_require_shares_what_it_returned) {
  write("lib/helpers.lua", R"(
loads = (loads or 0) + 1
local M = {}
function M.refuse(code) return smtp.reply(code, "5.7.1", "refused by a helper") end
return M
)");
  driver d(R"(
local a = require("lib.helpers")
local b = require "lib.helpers"
assert(a == b and loads == 1)
function on_connect(s) return a.refuse(554) end
)",
           in_folder());
  ASSERT_TRUE(d.loaded());
  auto out = d.run(hook::connect);
  ASSERT_EQ(out.st, status::done) << out.error;
  EXPECT_EQ(out.action.reply->code, 554);
}

TEST_F(modules, a_module_that_returns_nothing_gives_true) {
  write("lib/quiet.lua", "helper_ran = true\n");
  EXPECT_EQ(load_error("assert(require('lib.quiet') == true and helper_ran)", in_folder()), "");
}

TEST_F(modules, load_named_finds_modules_beside_the_scenario_file) {
  write("lib/codes.lua", "return { greylisted = 451 }\n");
  const auto path = write("beside.lua", R"(
local codes = require("lib.codes")
function on_rcpt(s, r) return smtp.reply(codes.greylisted) end
)");
  auto sc = scenario::load_named(path, quick_options());
  ASSERT_TRUE(sc) << sc.error();
}

TEST_F(modules, a_missing_module_names_the_file_looked_for_at_the_require) {
  auto err = load_error("\nrequire('lib.nope')\n", in_folder());
  EXPECT_THAT(err, StartsWith("test.lua:2: require 'lib.nope': " + lib("nope.lua") +
                              ": cannot open module: No such file or directory"));
  EXPECT_THAT(err, HasSubstr("require looks beside the script"));
  EXPECT_THAT(err, Not(HasSubstr("did you mean")));
}

TEST_F(modules, a_misspelt_module_name_gets_the_one_beside_it) {
  write("lib/policy.lua", "return {}\n");
  write("shared.lua", "return {}\n");
  EXPECT_THAT(load_error("require('lib.polcy')", in_folder()),
              HasSubstr("(did you mean 'lib.policy'?)"));
  EXPECT_THAT(load_error("require('shraed')", in_folder()), HasSubstr("(did you mean 'shared'?)"));
  // Nothing close, or a folder that does not exist: no guess.
  EXPECT_THAT(load_error("require('lib.zzzzzz')", in_folder()), Not(HasSubstr("did you mean")));
  EXPECT_THAT(load_error("require('nolib.policy')", in_folder()), Not(HasSubstr("did you mean")));
}

TEST_F(modules, names_stay_inside_the_folder) {
  for (const char* name : {"../etc/passwd", "/etc/passwd", "lib/helpers", "lib..x", ".x", "x.",
                           "lib.helpers.lua/", ""}) {
    auto err = load_error(std::string("require('") + name + "')", in_folder());
    EXPECT_THAT(err, HasSubstr("a module name is words of letters, digits")) << name;
  }
  EXPECT_THAT(load_error("require(42)", in_folder()), HasSubstr("lib.helpers is"));
  EXPECT_THAT(load_error("require({})", in_folder()), HasSubstr("string expected"));
}

TEST_F(modules, a_script_without_a_file_cannot_require) {
  auto err = load_error("require('lib.helpers')");
  EXPECT_THAT(err, StartsWith("test.lua:1: require 'lib.helpers': modules are found beside"));
}

TEST_F(modules, errors_inside_a_module_name_its_file_and_line) {
  write("lib/syntax.lua", "local x = = 1\n");
  EXPECT_THAT(load_error("require('lib.syntax')", in_folder()),
              StartsWith("test.lua:1: require 'lib.syntax': " + lib("syntax.lua") +
                         ":1: unexpected symbol near '='"));
  write("lib/raises.lua", "local x = 1\nerror('no good')\n");
  // The chain of requires leads from the scenario's line to the module's.
  EXPECT_EQ(load_error("require('lib.raises')", in_folder()),
            "test.lua:1: require 'lib.raises': " + lib("raises.lua") + ":2: no good");
  write("lib/compiled.lua", "\x1bLua");
  EXPECT_THAT(load_error("require('lib.compiled')", in_folder()),
              HasSubstr("compiled Lua is refused"));
  write("lib/spins.lua", "while true do end\n");
  EXPECT_THAT(load_error("require('lib.spins')", in_folder()),
              HasSubstr("instruction limit exceeded"));
}

// The checks a scenario's own source gets at load, before any session would fail on them.
TEST_F(modules, a_misspelt_smtp_function_or_a_dropped_action_in_a_module_is_found_at_load) {
  write("lib/typo.lua", "local M = {}\nfunction M.f() return smtp.rejct(550) end\nreturn M\n");
  EXPECT_THAT(load_error("require('lib.typo')", in_folder()),
              StartsWith("test.lua:1: require 'lib.typo': " + lib("typo.lua") + ":2: smtp.rejct"));
  write("lib/dropped.lua", "local M = {}\nfunction M.f()\n  smtp.reply(550)\nend\nreturn M\n");
  EXPECT_THAT(load_error("\nrequire('lib.dropped')", in_folder()),
              StartsWith("test.lua:2: require 'lib.dropped': " + lib("dropped.lua") +
                         ":3: smtp.reply(...) makes an action and drops it"));
}

// A module a hook requires is read when the hook first runs; it is looked for and compiled at
// load, so that a missing or broken one fails the load instead of every session.
TEST_F(modules, a_module_required_only_inside_a_hook_is_checked_at_load) {
  const std::string hook =
      "function on_rcpt(s, r)\n  local p = require('lib.policy')\n"
      "  return p.decide(r)\nend\n";
  EXPECT_THAT(load_error(hook, in_folder()),
              StartsWith("test.lua:2: require 'lib.policy': " + lib("policy.lua") +
                         ": cannot open module"));
  write("lib/policy.lua", "local M = {}\nfunction M.decide(r)\n  return smtp.reply(451 end\n");
  EXPECT_THAT(load_error(hook, in_folder()),
              StartsWith("test.lua:2: require 'lib.policy': " + lib("policy.lua") +
                         ":3: ')' "
                         "expected"));
  write("lib/policy.lua",
        "local M = {}\nfunction M.decide(r)\n  return smtp.rejct(451)\nend\n"
        "return M\n");
  EXPECT_THAT(
      load_error(hook, in_folder()),
      StartsWith("test.lua:2: require 'lib.policy': " + lib("policy.lua") + ":3: smtp.rejct"));
  // A good one loads, is not run at load (its top level runs once, in the hook), and works.
  write("lib/policy.lua",
        "loaded_policy = true\nlocal M = {}\nfunction M.decide(r)\n"
        "  return smtp.reply(451, '4.7.1', 'later')\nend\nreturn M\n");
  driver d(hook + "function on_connect(s) assert(not loaded_policy) end\n", in_folder());
  ASSERT_TRUE(d.loaded());
  ASSERT_EQ(d.run(hook::connect).st, status::done);
  auto out = d.run(hook::rcpt);
  ASSERT_EQ(out.st, status::done) << out.error;
  EXPECT_EQ(out.action.reply->code, 451);
}

TEST_F(modules, a_hook_failing_inside_a_module_function_names_the_module_line) {
  write("lib/broken.lua", "local M = {}\nfunction M.reply()\n  return nil .. 'x'\nend\nreturn M\n");
  driver d("local b = require('lib.broken')\nfunction on_connect(s) return b.reply() end\n",
           in_folder());
  auto out = d.run(hook::connect);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_THAT(out.error, StartsWith(lib("broken.lua") + ":3: attempt to concatenate"));
}

TEST_F(modules, a_module_may_start_with_a_byte_order_mark_or_a_shebang_line) {
  write("lib/bom.lua", "\xEF\xBB\xBFreturn 1\n");
  write("lib/shebang.lua", "#!/usr/bin/env lua\nreturn 2\n");
  EXPECT_EQ(load_error("assert(require('lib.bom') + require('lib.shebang') == 3)", in_folder()),
            "");
}

// Hooks of many sessions run side by side: a module waiting at its top level would be "loading"
// to all the others meanwhile. It may not wait there, and says where to wait instead.
TEST_F(modules, a_module_required_inside_a_hook_cannot_sleep_at_its_top_level) {
  write("lib/slow.lua", "smtp.sleep(2)\nreturn 421\n");
  driver d("function on_connect(s) return smtp.reply(require('lib.slow')) end\n", in_folder());
  auto out = d.start(hook::connect);
  ASSERT_EQ(out.st, status::failed);
  EXPECT_EQ(out.error, "test.lua:1: require 'lib.slow': " + lib("slow.lua") +
                           ":1: smtp.sleep cannot pause in a function that Lua's library calls (a "
                           "table.sort comparator, a string.gsub callback, a metamethod) or at a "
                           "module's top level (require): sleep in the hook's own code");
  // Nor is it left "loading" for the next session.
  write("lib/slow.lua", "return 421\n");
  d.open_session();
  auto next = d.start(hook::connect);
  ASSERT_EQ(next.st, status::done) << next.error;
  EXPECT_EQ(next.action.reply->code, 421);
}

// A module left among the scenarios (or client scripts) of a folder would pass as one that
// checks nothing: what it returns gives it away.
TEST_F(modules, a_script_that_returns_a_value_is_taken_for_a_module) {
  EXPECT_THAT(load_error("local M = {}\nreturn M\n"),
              StartsWith("test.lua: returns a value at its top level, as a module does"));
  EXPECT_EQ(load_error("if true then return end\n"), "");
  const auto path = write("helpers.lua", "local M = {}\nreturn M\n");
  auto s = client_script::load_named(path, client_options{});
  ASSERT_TRUE(s) << s.error();
  auto st = (*s)->start();
  ASSERT_EQ(st.st, script_step::status::failed);
  EXPECT_THAT(st.error, StartsWith(path + ": returns a value at its top level"));
}

TEST_F(modules, a_loop_of_requires_is_an_error_not_a_hang) {
  write("lib/a.lua", "return require('lib.b')\n");
  write("lib/b.lua", "return require('lib.a')\n");
  EXPECT_EQ(load_error("require('lib.a')", in_folder()),
            "test.lua:1: require 'lib.a': " + lib("a.lua") +
                ":1: require 'lib.b': " + lib("b.lua") +
                ":1: require 'lib.a': the module is still loading: it requires itself, through "
                "the modules it requires (a loop)");
  EXPECT_THAT(load_error("require('lib.a.lua')", in_folder()),
              HasSubstr("require 'lib.a.lua': a module is named without .lua: require(\"lib.a\")"));
}

TEST_F(modules, a_module_that_failed_inside_pcall_fails_again_when_required_again) {
  write("lib/raises.lua", "error('no good')\n");
  EXPECT_EQ(load_error(R"(
local ok1, e1 = pcall(require, "lib.raises")
local ok2, e2 = pcall(require, "lib.raises")
assert(not ok1 and not ok2 and e2:find("no good"), e2)
)",
                       in_folder()),
            "");
}

TEST_F(modules, a_parameter_only_a_module_reads_is_read) {
  write("lib/window.lua", "return tonumber(params.window or '2')\n");
  auto o = in_folder();
  o.params = {{"window", "5"}, {"windw", "5"}};
  auto sc = scenario::load("local w = require('lib.window')", "test.lua", o);
  ASSERT_TRUE(sc) << sc.error();
  EXPECT_EQ((*sc)->unread_params(), std::vector<std::string>{"windw"});
}

// A client script's module may make the network calls a shared login or greeting needs.
TEST_F(modules, a_client_scripts_module_may_connect_at_its_top_level) {
  write("lib/session.lua", "local c = connect {}\nreturn c\n");
  const auto path =
      write("probe.lua", "local c = require('lib.session')\nreport('ok', c ~= nil)\n");
  client_options o;
  o.target.host = "127.0.0.1";
  o.target.port = 2525;
  auto s = client_script::load_named(path, o);
  ASSERT_TRUE(s) << s.error();
  auto st = (*s)->start();
  ASSERT_EQ(st.st, script_step::status::op) << st.error;
  EXPECT_EQ(st.op.what, client_op::kind::connect);
}

// `check --client` looks at what a script requires without running it.
TEST_F(modules, a_client_check_finds_missing_modules_and_knows_what_modules_define) {
  write("lib/greet.lua", "function greet(c) return c end\nlocal function helper() end\n");
  const auto uses = write("uses.lua", "require('lib.greet')\ngreet(1)\nexpct(220)\n");
  auto s = client_script::load_named(uses, client_options{});
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ((*s)->check_without_running(),
            uses + ":3: expct is not defined (did you mean 'expect'?)");
  const auto fine = write("fine.lua", "require 'lib.greet'\ngreet(1)\n");
  s = client_script::load_named(fine, client_options{});
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ((*s)->check_without_running(), std::nullopt);
  const auto missing = write("missing.lua",
                             "-- require('lib.commented') is no require\n\n"
                             "local m = require('lib.gone')\n");
  s = client_script::load_named(missing, client_options{});
  ASSERT_TRUE(s) << s.error();
  EXPECT_THAT(
      (*s)->check_without_running().value_or(""),
      StartsWith(missing + ":3: require 'lib.gone': " + lib("gone.lua") + ": cannot open module"));
  write("lib/slip.lua", "function login()\n  expct(220)\nend\n");
  const auto slip = write("slip.lua", "require('lib.slip')\nlogin()\n");
  s = client_script::load_named(slip, client_options{});
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ((*s)->check_without_running(), slip + ":1: require 'lib.slip': " + lib("slip.lua") +
                                               ":2: expct is not defined (did you mean 'expect'?)");
  write("lib/broken.lua", "x = = 1\n");
  const auto broken = write("broken.lua", "require('lib.broken')\n");
  s = client_script::load_named(broken, client_options{});
  ASSERT_TRUE(s) << s.error();
  EXPECT_THAT((*s)->check_without_running().value_or(""),
              StartsWith(broken + ":1: require 'lib.broken': " + lib("broken.lua") +
                         ":1: unexpected symbol"));
}

TEST_F(modules, a_client_script_requires_beside_its_file) {
  write("lib/greeting.lua", "return 220\n");
  const auto path = write("probe.lua", "local code = require('lib.greeting')\nreport('c', code)\n");
  client_options o;
  auto s = client_script::load_named(path, o);
  ASSERT_TRUE(s) << s.error();
  auto st = (*s)->start();
  ASSERT_EQ(st.st, script_step::status::finished) << st.error;
  ASSERT_EQ((*s)->reports().size(), 1u);
  EXPECT_EQ((*s)->reports()[0].text, "220");
}

}  // namespace
}  // namespace smtpfault::script::testing
