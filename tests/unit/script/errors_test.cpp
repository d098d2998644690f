// Script errors (SPEC 4): "fails its session with 451 4.3.0 and a logged `file:line: message`".
// Every message must point at the scenario's own line, whatever raised it: the script, a C
// function of the API, or a check inside the Lua half of the API (lua/smtp.lua and
// lua/smtp_helpers.lua); and a typo gets a hint.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The error of the on_connect hook whose body is `body` (starting on line 2 of test.lua).
std::string connect_error(const std::string& body) {
  driver d("function on_connect(s)\n" + body + "\nend\n");
  auto o = d.start(hook::connect);
  EXPECT_EQ(o.st, status::failed) << body;
  return o.error;
}

std::string load_error_of_ehlo(const std::string& body) {
  driver d("function on_ehlo(s, name)\n" + body + "\nend\n");
  auto o = d.start(hook::ehlo);
  EXPECT_EQ(o.st, status::failed) << body;
  return o.error;
}

bool connect_succeeds(const std::string& body) {
  driver d("function on_connect(s)\n" + body + "\nend\n");
  return d.start(hook::connect).st == status::done;
}

TEST(script_errors, runtime_error_carries_file_and_line) {
  EXPECT_THAT(connect_error("  local x = nil\n  return x.field"), StartsWith("test.lua:3:"));
  EXPECT_THAT(connect_error("  error('custom failure')"), StartsWith("test.lua:2: custom failure"));
}

// `smtp.reply(550)` without `return` would do nothing and look like a scenario that works: the
// statement is refused when the scenario loads, at its line.
TEST(script_errors, an_action_dropped_by_a_statement_is_refused_at_load) {
  EXPECT_EQ(load_error("function on_connect(s)\n  smtp.reply(554, '5.7.1', 'go away')\nend\n"),
            "test.lua:2: smtp.reply(...) makes an action and drops it, so it does nothing: a "
            "hook acts through what it returns (return smtp.reply(...))");
  EXPECT_THAT(load_error("function on_rcpt(s, r) if r.address == 'x' then smtp.close() end end\n"),
              StartsWith("test.lua:1: smtp.close(...) makes an action"));
}

// An action kept for a branch not taken is no mistake: the default goes on, and the transcript
// says that an action was made and not returned, in case it was one.
TEST(script_errors, an_action_made_and_not_returned_is_noted_not_failed) {
  driver d(
      "function on_connect(s)\n  local r = smtp.reply(554)\n  if false then return r end\nend\n");
  auto o = d.start(hook::connect);
  EXPECT_EQ(o.st, status::done);
  EXPECT_TRUE(o.action.is_default());
  ASSERT_EQ(d.script_log().size(), 1u);
  EXPECT_EQ(d.script_log()[0],
            "test.lua:2: on_connect made an action (reply 554) and returned nothing: the "
            "server's own reply goes out");
  EXPECT_TRUE(connect_succeeds("  local r = smtp.reply(554)\n  return r"));
  EXPECT_TRUE(
      connect_succeeds("  return smtp.each_recipient { smtp.reply(250), smtp.reply(550) }"));
  // Made while loading, for the hooks to return or not: nothing to note.
  driver later("local later = smtp.reply(554)\nfunction on_connect(s) end\n");
  EXPECT_EQ(later.start(hook::connect).st, status::done);
  EXPECT_TRUE(later.script_log().empty());
}

TEST(script_errors, non_string_error_values_are_described) {
  EXPECT_THAT(connect_error("  error({})"), StartsWith("test.lua:2:"));
}

TEST(script_errors, errors_in_c_functions_point_at_the_scenario) {
  EXPECT_THAT(connect_error("  local r = smtp.random('x')"), StartsWith("test.lua:2:"));
  EXPECT_THAT(connect_error("  return smtp.random('x')"), StartsWith("test.lua:2:"));
  EXPECT_THAT(connect_error("  return smtp.ip_in('10.0.0.1', '10.0.0.0/99')"),
              StartsWith("test.lua:2:"));
}

TEST(script_errors, checks_in_the_helper_library_point_at_the_scenario) {
  for (const char* body :
       {"  local a = smtp.reply('abc')", "  return smtp.reply('abc')",
        "  return smtp.reply(250, '9.9', 'x')", "  return smtp.delay(-1)",
        "  return smtp.trickle(0, 1)", "  return smtp.split()",
        "  return smtp.reply(250):delay('x')", "  return smtp.domain(nil)",
        "  return smtp.malformed('odd')", "  return smtp.nth('x')",
        "  return smtp.delay(math.huge)", "  smtp.sleep(math.huge)", "  smtp.sleep('1')"}) {
    std::string err = connect_error(body);
    EXPECT_THAT(err, StartsWith("test.lua:2:")) << body;
    EXPECT_THAT(err, Not(HasSubstr("lua/smtp"))) << body;
  }
}

TEST(script_errors, helper_misuse_is_named_at_the_scenario_line_not_inside_the_library) {
  for (const auto& [body, says] : std::vector<std::pair<std::string, std::string>>{
           {"  return smtp.reply(421).close()", "close is a method of an action"},
           {"  return smtp.reply(250).delay(1)", "delay is a method of an action"},
           {"  return smtp:reply(550)", "call smtp.reply(...) with a dot"},
           {"  return smtp.every(0, 'k') and nil", "smtp.every (a whole number from 1"},
           {"  return smtp.nth(1.5) and nil", "smtp.nth (a whole number from 1"},
           {"  return smtp.reply(550):trickle(0, 1)", "at least 1 octet"},
           {"  local n = smtp.random(5, 1)", "bad argument #2 to smtp.random (interval is empty)"},
           {"  local n = smtp.random('x')", "bad argument #1 to smtp.random (a whole number"},
           {"  local b = smtp.chance('x')", "bad argument #1 to smtp.chance (number expected)"},
           // The session holds its connection through a wait: none lasts past a day.
           {"  smtp.sleep(1e308)", "bad argument #1 to smtp.sleep (seconds must be at most 86400"},
           {"  return smtp.delay(86401)",
            "bad argument #1 to smtp.delay (seconds must be at most 86400"},
           {"  return smtp.unsolicited(1e9, 421)",
            "bad argument #1 to smtp.unsolicited (seconds must be at most 86400"},
           {"  return smtp.reply(250):trickle(1, 1e9)",
            "bad argument #2 to smtp.action:trickle (seconds must be at most 86400"}}) {
    const std::string err = connect_error(body);
    EXPECT_THAT(err, StartsWith("test.lua:2:")) << body;
    EXPECT_THAT(err, HasSubstr(says)) << body;
    EXPECT_THAT(err, Not(HasSubstr("lua/smtp"))) << body;
  }
  EXPECT_THAT(load_error("local n = smtp.random(5, 1)\n"),
              HasSubstr("test.lua:1: bad argument #2 to smtp.random (interval is empty)"));
}

TEST(script_errors, reply_code_out_of_range_is_explained) {
  EXPECT_EQ(connect_error("  return smtp.reply(99)"),
            "test.lua:2: bad argument #1 to smtp.reply (a reply code from 100 to 599 expected, "
            "got 99)");
  EXPECT_EQ(connect_error("  return smtp.reply(600)"),
            "test.lua:2: bad argument #1 to smtp.reply (a reply code from 100 to 599 expected, "
            "got 600)");
  // SMTP never sends a 1yz reply, which is why a client under test may need to meet one; the
  // HTTP API's rules take the same range.
  EXPECT_TRUE(connect_succeeds("  return smtp.reply(150, 'preliminary')"));
}

TEST(script_errors, a_line_break_in_reply_text_is_refused) {
  // It would put the client out of step: the octets after it read as another reply.
  for (const char* body : {"  return smtp.reply(550, '5.1.1', 'bad\\r\\ninjected')",
                           "  return smtp.reply(451, {'one', 'two\\nthree'})",
                           "  return smtp.reply_then_close(421, 'bye\\n')"}) {
    std::string err = connect_error(body);
    EXPECT_THAT(err, StartsWith("test.lua:2: bad argument to smtp.reply")) << body;
    EXPECT_THAT(err, HasSubstr("must not contain CR, LF or NUL")) << body;
  }
  EXPECT_THAT(connect_error("  return smtp.reply(550, '5.1.1', 'bad\\0nul')"),
              HasSubstr("must not contain CR, LF or NUL"));
  std::string ext = load_error_of_ehlo("  return smtp.extensions{'PIPELINING', 'FOO\\r\\n250 X'}");
  EXPECT_THAT(ext, HasSubstr("bad argument #1 to smtp.extensions (keyword 2 holds a CR"));
  EXPECT_TRUE(connect_succeeds("  return smtp.reply(250, {'one', 'two'})"));
}

TEST(script_errors, a_mistyped_enhanced_code_is_not_sent_as_text) {
  EXPECT_THAT(connect_error("  return smtp.reply(550, '5.1')"),
              HasSubstr("bad argument #2 to smtp.reply (enhanced status code like"));
  EXPECT_TRUE(connect_succeeds("  return smtp.reply(550, 'No such user')"));
}

TEST(script_errors, wrong_argument_type_names_the_function) {
  EXPECT_EQ(connect_error("  return smtp.delay('soon')"),
            "test.lua:2: bad argument #1 to smtp.delay (number expected, got string)");
  // A table handed to a hook, given as the reply text by mistake.
  EXPECT_EQ(connect_error("  return smtp.reply(550, {address = 'x'})"),
            "test.lua:2: bad argument #2 to smtp.reply (string or list of strings expected, got "
            "a table with named fields)");
}

// Named when the scenario loads, with the library's own message: a misspelt call in a hook
// would otherwise fail only for the client that reaches it.
std::string hook_load_error(const std::string& body) {
  return load_error("function on_connect(s)\n" + body + "\nend\n");
}

TEST(script_errors, unknown_api_name_suggests_the_right_one) {
  EXPECT_EQ(hook_load_error("  return smtp.rejct(550)"),
            "test.lua:2: smtp.rejct does not exist (did you mean smtp.reply?)");
  // Looked up by a computed key, it is found when the hook runs.
  std::string err = connect_error("  return smtp['rej' .. 'ct'](550)");
  EXPECT_THAT(err, StartsWith("test.lua:2:"));
  EXPECT_THAT(err, HasSubstr("smtp.rejct does not exist (did you mean smtp.reply?)"));
  // Names the scenario gives the table itself are its own.
  EXPECT_EQ(load_error("smtp.mine = 1\nfunction on_connect(s) return smtp.mine == 1 and nil end\n"),
            "");
  // Also when it takes a library name away: no hint that names the name refused.
  EXPECT_EQ(load_error("smtp.reply = nil\nfunction on_connect(s) return smtp.reply end\n"), "");
  // Taken away while a hook ran, it is said to be the scenario's doing, not a slip of the pen
  // ("smtp.reply does not exist (did you mean smtp.reply?)").
  EXPECT_THAT(connect_error("  smtp.reply = nil\n  return smtp.reply(550)"),
              HasSubstr("smtp.reply is nil: the scenario assigned it (smtp.reply = ...)"));
  // Valid Lua where smtp is a name of the scenario's own (a parameter, a local) loads.
  EXPECT_EQ(load_error("local function fmt(smtp) return smtp.code .. ' ' .. smtp.text end\n"
                       "function on_connect(s) return smtp.reply(550, fmt({code = 1, text = 'x'}))"
                       " end\n"),
            "");
}

TEST(script_errors, an_unknown_method_chained_on_an_action_is_named_at_load) {
  // Once found only when a client reached the hook ("attempt to call a nil value").
  EXPECT_EQ(hook_load_error("  return smtp.reply(550, '5.1.1', { 'a (b)', \"c)\" })\n"
                            "    :delay(1) -- ) a comment\n    :dealy(2)"),
            "test.lua:4: an action has no method :dealy() (did you mean 'delay'?); its "
            "methods are :close(), :delay(), :reset(), :split(), :trickle()");
  // Methods of other values, and chains the scan cannot follow, are left to the run.
  EXPECT_EQ(load_error("function on_connect(s)\n  local t = ('x'):rep(2)\n"
                       "  return smtp.reply(smtp.reply(1 + (2)):delay(1).code):split(2)\nend\n"),
            "");
}

TEST(script_errors, unknown_api_name_knows_common_synonyms) {
  EXPECT_THAT(hook_load_error("  return smtp.reject(550)"), HasSubstr("did you mean smtp.reply?"));
  EXPECT_THAT(hook_load_error("  smtp.wait(1)"), HasSubstr("did you mean smtp.sleep?"));
  EXPECT_THAT(hook_load_error("  return smtp.disconect()"), HasSubstr("did you mean smtp.close?"));
  EXPECT_THAT(hook_load_error("  return smtp.dleay(1)"), HasSubstr("did you mean smtp.delay?"));
}

// The tables smtpfault hands over have fixed fields: a nil one is most likely a misspelt name.
TEST(script_errors, a_misspelt_field_of_a_handed_table_gets_its_likely_name) {
  EXPECT_THAT(connect_error("  local x = s.client_ipp:len()"),
              AllOf(StartsWith("test.lua:2:"), HasSubstr("(field 'client_ipp') (did you mean "
                                                         "'client_ip'?)")));
  EXPECT_THAT(connect_error("  local x = s.stat.count + 1"),
              HasSubstr("(field 'stat') (did you mean 'state'?)"));
  EXPECT_THAT(connect_error("  local x = s.tls_ver:len()"),
              HasSubstr("(did you mean 'tls_version'?)"));
  // A name of its own the script left nil: nothing to suggest.
  EXPECT_THAT(connect_error("  local x = s.state.counter + 1"), Not(HasSubstr("did you mean")));
}

TEST(script_errors, a_runtime_error_inside_the_helper_library_names_the_scenario_line_too) {
  // Not a checked argument: the helper fails on its own line, reported after the scenario's.
  std::string err = connect_error("  return smtp.domain_in('a@x.test', {5})");
  EXPECT_THAT(err, StartsWith("test.lua:2: lua/smtp_helpers.lua:"));
}

TEST(script_errors, unknown_api_name_at_load_time) {
  EXPECT_THAT(load_error("local x = 1\nsmtp.dealy(2)\n"),
              AllOf(StartsWith("test.lua:2:"), HasSubstr("did you mean smtp.delay")));
}

TEST(script_errors, assigning_the_api_table_is_a_load_error_not_a_crash) {
  for (const char* code :
       {"smtp = nil\n", "local x = 1\nsmtp = 5\n", "expect { quit = true }\nsmtp = {}\n"}) {
    EXPECT_THAT(load_error(code), HasSubstr("smtp is the scenario API")) << code;
  }
  EXPECT_THAT(load_error("local x = 1\nsmtp = 5\n"), StartsWith("test.lua:2: smtp is"));
  // A local of that name hides the API from the script alone.
  driver d("local smtp = 1\nfunction on_connect(s) end\n");
  EXPECT_EQ(d.start(hook::connect).st, status::done);
}

TEST(script_errors, a_strict_globals_metatable_does_not_reach_the_host) {
  // A common Lua idiom: reading an undeclared global raises. The host reads globals raw.
  const std::string strict =
      "setmetatable(_G, {__index = function(_, k) error('undeclared ' .. k, 2) end})\n";
  driver d(strict + "function on_connect(s) return smtp.reply(554) end\n");
  auto o = d.start(hook::connect);
  ASSERT_EQ(o.st, status::done) << o.error;
  EXPECT_EQ(o.action.reply->code, 554);
  EXPECT_THAT(load_error(strict + "smtp = nil\n"), HasSubstr("smtp is the scenario API"));
}

TEST(script_errors, syntax_error_is_a_load_error) {
  EXPECT_THAT(load_error("function on_connect(s)\n  return smtp.reply(250\nend\n"),
              StartsWith("test.lua:3:"));
}

// As the lua command reads files: a byte order mark and a "#!" first line are skipped, and the
// lines after them keep their numbers.
// The parser's own limit names no file or line of its own: the file at least.
TEST(script_errors, nesting_too_deep_names_the_file) {
  EXPECT_EQ(load_error("return " + std::string(300, '(') + "1" + std::string(300, ')') + "\n"),
            "test.lua: C stack overflow (expressions nested too deep)");
}

TEST(script_errors, a_compiled_chunk_names_the_file) {
  EXPECT_EQ(load_error(std::string("\x1bLuaT\x00", 6)),
            "test.lua: attempt to load a binary chunk (mode is 't') (compiled Lua is refused: "
            "give the source text)");
}

// Lua shortens a long chunk name ("...level/broken.lua:1:"): the message keeps it once.
TEST(script_errors, a_long_path_is_named_once) {
  const std::string name = "/tmp/a_rather_long_directory_name/another_level_of_nesting/broken.lua";
  auto sc = scenario::load("x = = 1\n", name, quick_options());
  ASSERT_FALSE(sc);
  EXPECT_THAT(sc.error(), StartsWith("..."));
  EXPECT_THAT(sc.error(), HasSubstr("broken.lua:1: unexpected symbol"));
  EXPECT_EQ(sc.error().find(name), std::string::npos) << sc.error();
}

TEST(script_errors, a_byte_order_mark_and_a_shebang_line_are_skipped) {
  EXPECT_EQ(load_error("\xEF\xBB\xBF-- saved by an editor on Windows\nlocal x = 1\n"), "");
  EXPECT_EQ(load_error("#!/usr/bin/env lua\nlocal x = 1\n"), "");
  EXPECT_THAT(load_error("\xEF\xBB\xBF#!/usr/bin/env lua\nlocal x = 1\nlocal = 2\n"),
              StartsWith("test.lua:3:"));
  // Only at the very start: elsewhere '#' is Lua's length operator, and a stray one an error.
  EXPECT_THAT(load_error("local x = 1\n#!/bin/lua\n"), StartsWith("test.lua:2:"));
}

// The list is the argument; the item is named by its place in it.
TEST(script_errors, a_bad_item_of_a_list_argument_is_named_by_its_place) {
  EXPECT_THAT(
      connect_error("  return smtp.extensions({'PIPELINING', 5})"),
      HasSubstr("bad argument #1 to smtp.extensions (keyword 2 is a number, not a string)"));
  EXPECT_THAT(connect_error("  return smtp.reply(250, {'ok', true})"),
              HasSubstr("bad argument to smtp.reply (reply line 2 is a boolean, not a string)"));
}

TEST(script_errors, an_error_raised_with_a_table_says_so) {
  EXPECT_EQ(connect_error("  error({code = 1})"),
            "test.lua:2: error object is a table, not a string (error(\"text\") says what went "
            "wrong)");
}

// The file's first slip first, whatever order the globals come in, and the others after it.
TEST(script_errors, every_unknown_hook_is_named_the_first_by_line_first) {
  const std::string err = load_error(
      "function on_zzz(s) end\nfunction on_aaa(s) end\nlocal n = 0\non_connected = 1\n"
      "function on_mail(s) end\n");
  EXPECT_THAT(err, StartsWith("test.lua:1: unknown hook 'on_zzz'"));
  EXPECT_THAT(err, EndsWith("(also unknown: on_aaa at line 2, on_connected at line 4)"));
}

TEST(script_errors, unknown_hook_fails_the_load_with_a_hint) {
  std::string err = load_error("local x = 1\nfunction on_rcpt_to(s, rcpt) end\n");
  EXPECT_THAT(err, StartsWith("test.lua:2: unknown hook 'on_rcpt_to'"));
  EXPECT_THAT(err, HasSubstr("did you mean on_rcpt?"));
  EXPECT_THAT(load_error("function on_ehllo(s) end\n"), HasSubstr("did you mean on_ehlo?"));
  EXPECT_THAT(load_error("function on_mesage(s) end\n"), HasSubstr("did you mean on_message?"));
  EXPECT_THAT(load_error("function on_mail_from(s) end\n"), HasSubstr("did you mean on_mail?"));
  EXPECT_THAT(load_error("local x = 1\non_connected = 1\n"),
              StartsWith("test.lua:2: unknown hook 'on_connected' (did you mean on_connect?)"));
  // A command without a hook of its own is on_command's.
  EXPECT_THAT(
      load_error("function on_rset(s) end\n"),
      HasSubstr("RSET has no hook of its own: on_command sees it, with cmd.verb == \"RSET\""));
  EXPECT_THAT(load_error("function on_quit(s) end\n"), HasSubstr("on_command sees it"));
  // LHLO has one: on_ehlo's.
  EXPECT_THAT(load_error("function on_lhlo(s) end\n"),
              HasSubstr("(on_ehlo is called for LHLO as well as EHLO;"));
}

TEST(script_errors, a_hook_defined_twice_is_refused_naming_both) {
  EXPECT_THAT(load_error("function on_rcpt(s, r) return smtp.reply(550) end\n"
                         "local x = 1\n"
                         "function on_rcpt(s, r) end\n"),
              StartsWith("test.lua:1: on_rcpt is defined again at line 3, and only that one runs"));
  // With a blank before the parameters, as Lua allows.
  EXPECT_THAT(load_error("function on_rcpt (s, r) return smtp.reply(550) end\n"
                         "function on_rcpt(s, r) end\n"),
              StartsWith("test.lua:1: on_rcpt is defined again at line 2"));
  // One chosen inside a block is a choice, not a slip.
  driver d(
      "function on_rcpt(s, r) end\n"
      "if STRICT then\n  function on_rcpt(s, r) return smtp.reply(550) end\nend\n");
  EXPECT_EQ(d.start(hook::rcpt).st, status::done);
}

TEST(script_errors, a_variable_named_like_a_hook_is_a_variable) {
  driver d("on_mail_count = 0\nfunction on_mail(s, m)\n  on_mail_count = on_mail_count + 1\nend\n");
  EXPECT_EQ(d.start(hook::mail).st, status::done);
}

TEST(script_errors, a_hook_name_in_another_case_is_caught) {
  for (const char* code : {"function On_Rcpt(s, r) end\n", "function onRcpt(s, r) end\n",
                           "function ON_RCPT(s, r) end\n"}) {
    EXPECT_THAT(load_error(code), HasSubstr("did you mean on_rcpt?")) << code;
  }
}

TEST(script_errors, a_hook_name_missing_its_underscore_or_case_is_caught) {
  EXPECT_THAT(load_error("function onrcpt(s, r) end\n"),
              StartsWith("test.lua:1: unknown hook 'onrcpt' (did you mean on_rcpt?)"));
  EXPECT_THAT(load_error("function On_mail(s, m) end\n"), HasSubstr("did you mean on_mail?"));
  // Helpers with other names stay free, and so do near names that are not functions.
  driver helpers("function greylisted(s) end\nonrcpt = 1\nfunction on_rcpt(s, r) end\n");
  EXPECT_EQ(helpers.start(hook::rcpt).st, status::done);
}

TEST(script_errors, what_the_sandbox_leaves_out_is_said) {
  // Called in a hook, found at load: it would fail every session, seen only when one came.
  EXPECT_EQ(load_error("function on_connect(s)\n  print('hello')\nend\n"),
            "test.lua:2: print is not available in a scenario: smtp.log writes to the session's "
            "transcript");
  EXPECT_EQ(load_error("local function print(x) end\nfunction on_connect(s) print('x') end\n"), "");
  // So is a call through a table the sandbox leaves out.
  EXPECT_EQ(load_error("function on_connect(s)\n  io.write('x')\nend\n"),
            "test.lua:2: io is not available in the sandbox: scripts reach no files or processes");
  // Reached another way, the hook's error says the same.
  EXPECT_THAT(connect_error("  (print)('hello')"),
              AllOf(StartsWith("test.lua:2:"), HasSubstr("smtp.log writes to the session's")));
  EXPECT_THAT(load_error("local t = os.time()\n"),
              HasSubstr("('os' is not available in the sandbox"));
  EXPECT_THAT(load_error("dofile('socket.lua')\n"), HasSubstr("'dofile' is not available"));
  EXPECT_THAT(load_error("local b = string.dump(function() end)\n"),
              HasSubstr("(string.dump is not available in the sandbox"));
}

TEST(script_errors, hide_takes_only_extensions_it_can_hide) {
  driver d("function on_ehlo(s, name) return smtp.hide('starttls', 'FOO') end\n");
  auto o = d.start(hook::ehlo);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, AllOf(StartsWith("test.lua:1: bad argument #2 to smtp.hide (\"FOO\" is not "
                                        "an extension or command the server can hide"),
                             HasSubstr("reply to it in on_command")));
  // VRFY and HELP are commands, not EHLO keywords, and are hideable too.
  driver commands("function on_ehlo(s, name) return smtp.hide('vrfy', 'HELP') end\n");
  EXPECT_EQ(commands.start(hook::ehlo).st, status::done);
}

TEST(script_errors, a_client_script_is_recognised) {
  EXPECT_THAT(load_error("local c = connect { port = 25 }\nc:expect(220)\n"),
              HasSubstr("this looks like a client script: smtpfault run runs those"));
}

TEST(script_errors, a_local_hook_is_explained) {
  EXPECT_EQ(
      load_error("-- greylist\n  local function on_rcpt(s, r)\n  return smtp.reply(451)\nend\n"),
      "test.lua:2: on_rcpt is local, so it is never called: hooks must be global functions "
      "(drop 'local')");
  EXPECT_THAT(load_error("local on_mail = function(s, m) end\n"),
              StartsWith("test.lua:1: on_mail"));
  // Locals that only start like a hook are free.
  driver counter("local on_rcpt_count = 0\nfunction on_rcpt(s, r) on_rcpt_count = 1 end\n");
  EXPECT_EQ(counter.start(hook::rcpt).st, status::done);
}

TEST(script_errors, unknown_hook_far_from_any_lists_the_hooks) {
  std::string err = load_error("function on_something_else() end\n");
  EXPECT_THAT(err, HasSubstr("unknown hook 'on_something_else'"));
  EXPECT_THAT(err, Not(HasSubstr("did you mean")));
  EXPECT_THAT(load_error("function on_quit(s) end\n"), Not(HasSubstr("did you mean")));
  EXPECT_THAT(err, HasSubstr("on_connect"));
}

// A hook whose one parameter is named for its second argument gets the session there: its
// test of the recipient never holds, and nothing would say so.
TEST(script_errors, a_hook_missing_its_session_parameter_is_refused) {
  EXPECT_THAT(load_error("\nfunction on_rcpt(rcpt)\n  return smtp.reply(550)\nend\n"),
              HasSubstr("test.lua:2: on_rcpt(rcpt) takes the session first: a hook is called as "
                        "on_rcpt(s, rcpt), so its one parameter 'rcpt' would hold the session"));
  EXPECT_THAT(load_error("function on_command(command) end\n"),
              HasSubstr("on_command(command) takes the session first"));
  // The session alone, or under another name, is a hook as it may be.
  EXPECT_EQ(load_error("function on_rcpt(s) end\nfunction on_message(session) end\n"), "");
  EXPECT_EQ(load_error("function on_mail(s, mail) end\nfunction on_connect(s) end\n"), "");
}

TEST(script_errors, expectations_are_checked_when_declared) {
  EXPECT_THAT(load_error("\nexpect { delivred = 1 }\n"),
              HasSubstr("test.lua:2: expect: unknown expectation 'delivred' (did you mean "
                        "'delivered'?)"));
  // A table over several lines: the mistake is named on the line that sets the key, not on the
  // line where the table begins (a key in a comment is not the one).
  EXPECT_THAT(load_error("expect {\n  quit = true,\n  -- delivered = 2,\n  delivred = 1,\n}\n"),
              HasSubstr("test.lua:4: expect: unknown expectation 'delivred'"));
  EXPECT_THAT(load_error("expect {\n  quit = true,\n  delivered = {min = 3, max = 1},\n}\n"),
              HasSubstr("test.lua:3: expect: delivered = {min = 3, max = 1} can never hold"));
  EXPECT_THAT(load_error("expect {\n  exit = 'ok',\n}\n"),
              HasSubstr("test.lua:2: expect: exit must be"));
  for (const char* status : {"256", "-1", "1.5"}) {
    EXPECT_THAT(load_error(std::string("expect { exit = ") + status + " }\n"),
                HasSubstr("test.lua:1: expect: exit must be a whole number from 0 to 255"))
        << status;
  }
  EXPECT_EQ(load_error("expect { exit = 255 }\n"), "");
  // One status per run: as many as runs, each a status.
  EXPECT_EQ(load_error("expect { runs = 2, exit = { 'failure', 0 } }\n"), "");
  EXPECT_EQ(load_error("expect { runs = 2 }\nexpect { exit = { 'failure', 0 } }\n"), "");
  EXPECT_THAT(load_error("expect {\n  runs = 3,\n  exit = { 'failure', 'success' },\n}\n"),
              HasSubstr("test.lua:3: expect: exit lists 2 statuses, one per run, but runs = 3"));
  EXPECT_THAT(load_error("expect { exit = { 'failure', 'success' } }\n"),
              HasSubstr("expect: exit lists 2 statuses, one per run, but runs = 1"));
  EXPECT_THAT(load_error("expect { exit = { 'failure', 'ok' }, runs = 2 }\n"),
              HasSubstr("test.lua:1: expect: exit[2] must be \"success\", \"failure\" or a number, "
                        "not \"ok\""));
  EXPECT_THAT(load_error("expect { exit = { 256 } }\n"),
              HasSubstr("expect: exit[1] must be a whole number from 0 to 255"));
  EXPECT_THAT(load_error("expect { exit = {} }\n"),
              HasSubstr("expect: exit as a list needs one status per run"));
  EXPECT_THAT(load_error("expect { exit = { true } }\n"),
              HasSubstr("expect: exit[1] must be a string or number, not a boolean"));
  // runs given after the list must still match it.
  EXPECT_THAT(load_error("expect { exit = { 1 } }\nexpect {\n  runs = 2,\n}\n"),
              HasSubstr("test.lua:3: expect: runs = 2, but exit lists 1 statuses (one per run)"));
  // retry_delay times the retry that retried_after_4xx looks for: alone it would check nothing.
  EXPECT_THAT(load_error("expect { retry_delay = 5 }\n"),
              HasSubstr("test.lua:1: expect: retry_delay is checked only with retried_after_4xx "
                        "= true"));
  EXPECT_EQ(load_error("expect { retried_after_4xx = true, retry_delay = {min = 1} }\n"), "");
  // Named as the scenario wrote it: expect, not a function of smtp.
  EXPECT_EQ(load_error("expect(nil)\n"),
            "test.lua:1: bad argument #1 to expect (table expected, got nil): expect { "
            "delivered = 1, ... }");
  EXPECT_EQ(load_error("expect { retried_after_4xx = true }\nexpect { retry_delay = 5 }\n"), "");
  // A count of messages is a whole number, 0 or more (-1 was read as 18446744073709551615).
  for (const char* bad : {"-1", "1.5", "{min = -2}", "{max = 'x'}"}) {
    EXPECT_THAT(load_error(std::string("expect { delivered = ") + bad + " }\n"),
                HasSubstr("test.lua:1: expect: delivered must be a whole number of messages"))
        << bad;
  }
  EXPECT_EQ(load_error("expect { delivered = 0 }\nexpect { delivered = {min = 1, max = 3} }\n"),
            "");
  // A range that could never hold, or that says nothing, is the script's mistake, not a pass.
  const std::pair<const char*, const char*> ranges[] = {
      {"delivered = {minimum = 1}", "expect: delivered = {...} takes min and max, not 'minimum'"},
      {"delivered = {min = 1, maks = 2}", "not 'maks' (did you mean 'max'?)"},
      {"delivered = {min = 3, max = 1}",
       "expect: delivered = {min = 3, max = 1} can never hold: min is above max"},
      {"delivered = {}", "expect: delivered = {} needs min, max or both"},
      {"delivered = {1, 2}", "expect: delivered = {...} takes min and max by name, not a list"},
      {"delivered = {min = '1'}", "; min is \"1\""},
      {"delivered = {min = 0/0}", "; min is nan"},
      {"retried_after_4xx = true, retry_delay = {min = -1}",
       "expect: retry_delay must be a number of seconds, 0 or more,"},
      {"runs = 0", "test.lua:1: expect: runs must be a whole number from 1 to 1000, not 0"},
      {"runs = 1.5", "expect: runs must be a whole number from 1 to 1000, not 1.5"},
      // Past an unsigned int, the count wrapped: no bound meant a run that never ends.
      {"runs = 1e10", "expect: runs must be a whole number from 1 to 1000, not 10000000000.0"},
      {"run_gap = -1", "test.lua:1: expect: run_gap must be a number of seconds from 0 to 86400"},
      {"run_gap = 1e9",
       "expect: run_gap must be a number of seconds from 0 to 86400, not 1000000000.0"},
  };
  for (const auto& [expectation, says] : ranges) {
    EXPECT_THAT(load_error(std::string("expect { ") + expectation + " }\n"), HasSubstr(says))
        << expectation;
  }
  // Two mistakes: the same one is reported every time (keys in order), not whichever pairs()
  // met first.
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(load_error("expect { quit = 'yes', delivered = 'one' }\n"),
                HasSubstr("expect: 'delivered' must be a number or table, not a string"));
  }
}

TEST(script_errors, a_misspelt_call_gets_the_closest_name) {
  EXPECT_THAT(load_error_of_ehlo("return smtp_reply(451)"),
              HasSubstr("attempt to call a nil value (global 'smtp_reply') (did you mean "
                        "'smtp.reply'?)"));
  // Through a variable, which the check at load does not follow: the hint when it runs.
  EXPECT_THAT(load_error_of_ehlo("local a = smtp.reply(451) return a:dealy(2)"),
              HasSubstr("(method 'dealy') (did you mean 'delay'?)"));
  // A method is not guessed from Lua's base library.
  EXPECT_THAT(load_error_of_ehlo("local a = smtp.reply(451) return a:paris()"),
              Not(HasSubstr("pairs")));
  // Nothing close: no guess.
  EXPECT_THAT(load_error_of_ehlo("return completely_unknown()"), Not(HasSubstr("did you mean")));
}

TEST(script_errors, each_recipient_takes_a_list_of_replies) {
  EXPECT_THAT(load_error_of_ehlo("return smtp.each_recipient{ false, 552 }"),
              HasSubstr("item 2 must be smtp.reply(...) or false, not a number"));
  EXPECT_THAT(load_error_of_ehlo("return smtp.each_recipient{ first = smtp.reply(550) }"),
              HasSubstr("a list in RCPT order, not a key first"));
  // Read into memory outside the sandbox: bounded.
  EXPECT_THAT(load_error_of_ehlo("return smtp.each_recipient{ [1000000000] = false }"),
              HasSubstr("not a key 1000000000"));
  EXPECT_THAT(load_error_of_ehlo("local a = smtp.each_recipient{ false }\n"
                                 "a.each_count = 1e9\nreturn a"),
              HasSubstr("each_recipient with a count of"));
  EXPECT_THAT(load_error_of_ehlo("local a = smtp.each_recipient{ false }\n"
                                 "a.code = 250\nreturn a"),
              HasSubstr("each_recipient gives the replies"));
  // Only each item's reply is sent: a delay or ending on an item is refused, not lost.
  EXPECT_THAT(load_error_of_ehlo("return smtp.each_recipient{ smtp.reply(552):delay(1) }"),
              HasSubstr("item 1 is more than a reply: put :delay(), :close() and the like on "
                        "smtp.each_recipient{...} itself"));
  EXPECT_THAT(load_error_of_ehlo("return smtp.each_recipient{ false, smtp.reply_then_close(421) }"),
              HasSubstr("item 2 is more than a reply"));
}

TEST(script_errors, other_globals_are_free) {
  EXPECT_EQ(load_error("helper = 1\nfunction format_reply() end\n"), "");
}

TEST(script_errors, hook_that_is_not_a_function_fails_the_load) {
  EXPECT_THAT(load_error("on_connect = 5\n"),
              HasSubstr("on_connect must be a function, not a number"));
  // With the line that made it so, and not a line that only compares or reads it.
  EXPECT_THAT(load_error("local n = 1\nif on_rcpt == nil then end\n  on_rcpt = 'x'\n"),
              HasSubstr(":3: on_rcpt must be a function, not a string"));
}

}  // namespace
}  // namespace smtpfault::script::testing
