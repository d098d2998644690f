// The load-time search for a statement that makes an action and drops it: found wherever a
// statement begins, never where the action's value is used, in a comment or in a string.
#include "script/source_scan.hpp"

#include <gtest/gtest.h>
#include <algorithm>

namespace smtpfault::script {
namespace {

std::size_t line_of(std::string_view code) {
  auto d = find_discarded_action(code);
  return d ? d->line : 0;
}

TEST(discarded_actions, statements_that_drop_an_action) {
  EXPECT_EQ(line_of("function on_rcpt(s, r)\n  smtp.reply(550)\nend\n"), 2u);
  EXPECT_EQ(find_discarded_action("function on_rcpt(s, r)\n  smtp.reply(550)\nend\n")->call,
            "smtp.reply");
  EXPECT_EQ(line_of("function on_connect(s) smtp.close() end"), 1u);
  EXPECT_EQ(line_of("if x then smtp.delay(1) else smtp.hang() end"), 1u);
  EXPECT_EQ(line_of("local a = 1; smtp.reset()"), 1u);
  EXPECT_EQ(line_of("x = f()\nsmtp.hide 'AUTH'"), 2u);
  EXPECT_EQ(line_of("do smtp.extensions { 'SIZE' } end"), 1u);
  EXPECT_EQ(line_of("  smtp.reply(451):delay(2)"), 1u);
  EXPECT_EQ(line_of("for i = 1, 3 do\n  smtp.trickle(1, 0.1)\nend"), 2u);
}

TEST(discarded_actions, an_action_whose_value_is_used) {
  for (const char* code : {
           "return smtp.reply(550)",
           "local r = smtp.reply(550)",
           "r = smtp.close()",
           "return smtp.each_recipient {\n  smtp.reply(250),\n  smtp.reply(550),\n}",
           "return smtp.each_recipient({\n  smtp.reply(250)\n})",
           "local r =\n  smtp.reply(550)",
           "return\n  smtp.reply(550)",
           "return x and\n  smtp.reply(550) or\n  smtp.delay(1)",
           "local t = { a = smtp.reply(1), b = smtp.close() }",
           "f(smtp.reply(550))",
           "if smtp.chance(0.5) then return smtp.reply(451) end",
           "smtp.log('x') smtp.count('y') smtp.sleep(1)",  // not actions
           "local s = mysmtp.reply(1)",
           "x = obj.smtp.reply(1)",
       }) {
    EXPECT_EQ(line_of(code), 0u) << code;
  }
}

TEST(discarded_actions, comments_and_strings_are_not_code) {
  for (const char* code : {
           "-- smtp.reply(550)",
           "x = 1 -- then smtp.reply(550)",
           "--[[\nsmtp.reply(550)\n]]",
           "local doc = [[\nsmtp.close()\n]]",
           "smtp.log(\"then smtp.reply(1)\")",
           "smtp.log('it\\'s smtp.reply(1)')",
       }) {
    EXPECT_EQ(line_of(code), 0u) << code;
  }
  // Lines are counted through comments and long strings.
  EXPECT_EQ(line_of("--[[\n\n]]\nlocal s = [[\n]]\nsmtp.reply(1)"), 6u);
}

TEST(smtp_references, every_use_of_the_api_with_what_follows_it) {
  auto refs = smtp_references(
      "smtp.helper = function() end\nlocal n = smtp.count('x')\nif smtp.seen == nil then end\n"
      "-- smtp.commented()\nlocal t = 'smtp.quoted'\nx = a.smtp.not_ours\n");
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[0].name, "helper");
  EXPECT_TRUE(refs[0].assigned);
  EXPECT_TRUE(refs[0].starts_statement);
  EXPECT_EQ(refs[1].name, "count");
  EXPECT_EQ(refs[1].line, 2u);
  EXPECT_TRUE(refs[1].called);
  EXPECT_FALSE(refs[1].starts_statement);
  EXPECT_EQ(refs[2].name, "seen");
  EXPECT_FALSE(refs[2].called);
  EXPECT_FALSE(refs[2].assigned);  // == compares
}

// Where the code may give the name smtp to something of its own, smtp.NAME may not be the
// library's: nothing is judged rather than valid Lua refused.
TEST(smtp_references, none_where_the_code_may_bind_the_name_itself) {
  for (const char* code : {
           "local function fmt(smtp) return smtp.code end\nreturn smtp.reply(1)",
           "local smtp = { rejct = function() end }\nsmtp.rejct()",
           "local a, smtp = 1, {}\nsmtp.x()",
           "for _, smtp in ipairs(t) do smtp.y() end",
           "f = function(a,\n smtp) return smtp.z end",
       }) {
    EXPECT_TRUE(smtp_references(code).empty()) << code;
  }
  // Uses of the library's table are not bindings.
  for (const char* code : {
           "local s = smtp\nreturn smtp.reply(1)",
           "local x = smtp.count('a')\nreturn smtp.reply(1)",
           "local t = { smtp = 1 }\nreturn smtp.reply(1)",
           "-- local smtp = {}\nreturn smtp.reply(1)",
           "local msg = 'function(smtp)'\nreturn smtp.reply(1)",
       }) {
    EXPECT_FALSE(smtp_references(code).empty()) << code;
  }
}

TEST(params_never_named, keys_the_source_never_names) {
  const std::vector<std::string> keys{"window", "windw", "limit", "delay", "cap"};
  const std::string code =
      "local W = smtp.param_number(\"window\", 60)\n"
      "local L = tonumber(params.limit or 1)\n"
      "local C = params [ 'cap' ]\n"
      "local delay_seconds = 3 -- params.delay, in a comment: not read\n"
      "function on_mail(s, mail) return mail.params.SIZE end  -- ESMTP's, not the table\n";
  EXPECT_EQ(params_never_named(code, keys), (std::vector<std::string>{"windw", "delay"}));
  EXPECT_EQ(params_never_named("local x = 1\n", keys), keys);
}

TEST(params_maybe_named, words_that_could_be_keys_not_reply_text) {
  const std::string code =
      "local W = smtp.param_number(\"window\", 60)\n"
      "local L = params.limit\n"
      "return smtp.reply(550, \"5.1.1\", \"No such user\")\n";
  auto names = params_maybe_named(code);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"limit", "window"}));
}

TEST(params_never_named, none_when_the_table_is_used_whole) {
  const std::vector<std::string> keys{"windw"};
  for (const char* code : {"for k, v in pairs( params ) do end\n", "local p = params\n",
                           "local k = 'x'\nreturn params[k]\n"}) {
    EXPECT_TRUE(params_never_named(code, keys).empty()) << code;
  }
}

TEST(undefined_calls, calls_of_names_the_code_does_not_define) {
  const std::string code =
      "local function helper(x) return x end\n"
      "function t.run(send_fn) send_fn('x') end\n"
      "function t:go(cb) cb() end\n"
      "for i, fn in ipairs({}) do fn() end\n"
      "mine = function(a) a() end\n"
      "mine(helper)\n"
      "expct(220)\n"
      "c:expct(220)  -- a method: not a global's name, but c's\n"
      "send \"NOOP\"\n"
      "-- reprot('x') in a comment\n"
      "local s = 'reprot(1)'\n"
      "io.write('x')  -- through a table: io is needed\n"
      "local t2 = {}\nt2.f()  -- a table of its own\n"
      "string.format('%d', 1)\n";
  std::vector<std::string> got;
  for (const auto& c : undefined_calls(code))
    got.push_back(std::to_string(c.line) + ":" + c.name);
  EXPECT_EQ(got, (std::vector<std::string>{"4:ipairs", "7:expct", "8:c", "9:send", "12:io",
                                           "15:string"}));
}

}  // namespace
}  // namespace smtpfault::script
