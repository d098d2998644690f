// What a hook gives back (SPEC 4): nothing, false or an action keep the session going; anything
// else, a yield outside smtp.sleep or a declaration that belongs at the top level fails the
// session with a message that says what to return instead, at the scenario's own line.
#include <gtest/gtest.h>

#include <string>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(script_errors, a_hook_returning_false_keeps_the_default) {
  // `return refused and smtp.reply(550)`: false when not refused.
  driver d("function on_rcpt(s, rcpt)\n  return rcpt.address == 'x@y' and smtp.reply(550)\nend\n");
  auto o = d.start(hook::rcpt);
  ASSERT_EQ(o.st, status::done) << o.error;
  EXPECT_FALSE(o.action.reply);
}

TEST(script_errors, hook_returning_a_string_is_explained) {
  driver d("local x = 1\nfunction on_mail(s, mail)\n  return '550 no'\nend\n");
  const auto error = hook_failure(d, hook::mail);
  // The line of its only return.
  EXPECT_THAT(error, StartsWith("test.lua:3: on_mail returned a string"));
  EXPECT_THAT(error, HasSubstr("smtp.reply("));
}

TEST(script_errors, a_hook_with_several_returns_names_their_lines) {
  driver d(
      "function on_mail(s, mail)\n  if s.helo == 'x' then\n    return 'no'\n  end\n"
      "  return 'no either'\nend\n"
      "function on_rcpt(s, rcpt)\n  local f = function() return 1 end\n  return 'no'\nend\n");
  EXPECT_THAT(
      hook_failure(d, hook::mail),
      StartsWith("test.lua:1: on_mail (lines 1-6, returns on lines 3, 5) returned a string"));
  // A function written inside the hook has returns of its own: the hook's lines only.
  EXPECT_THAT(hook_failure(d, hook::rcpt),
              StartsWith("test.lua:7: on_rcpt (lines 7-10) returned a string"));
}

TEST(script_errors, hook_returning_a_plain_table_is_explained) {
  driver d(
      "function on_rcpt(s, rcpt)\n  return { code = 550 }\nend\n"
      "function on_data(s)\n  return { cod = 550 }\nend\n");
  // Even one that holds an action's fields: they are the library's own, not the scripts' (a
  // hand-built {code = 550} once passed while {code = 550, text = "x"} did not).
  for (auto h : {hook::rcpt, hook::data}) {
    const auto error = hook_failure(d, h);
    EXPECT_THAT(error, HasSubstr("returned a table that is not an action")) << error;
    EXPECT_THAT(error, HasSubstr("smtp.reply()"));
  }
  EXPECT_THAT(hook_failure(d, hook::rcpt), StartsWith("test.lua:2: on_rcpt returned a table"));
}

TEST(script_errors, close_or_reset_on_an_ending_without_a_reply_is_refused) {
  // smtp.close():close() once sent the normal reply and a close while the transcript said
  // "close without reply"; smtp.reset():close() sent no reset at all.
  driver d(
      "function on_mail(s, m)\n  return smtp.close():close()\nend\n"
      "function on_rcpt(s, r)\n  return smtp.hang():reset()\nend\n"
      "function on_data(s)\n  return smtp.reply(421, '4.3.2', 'bye'):reset():close():reset()\n"
      "end\n"
      "function on_helo(s, name)\n  return smtp.close():delay(1):trickle(1, 0.1)\nend\n");
  EXPECT_THAT(hook_failure(d, hook::mail),
              HasSubstr("test.lua:2: action:close() on close without reply, which already ends "
                        "the connection without a reply"));
  EXPECT_THAT(hook_failure(d, hook::rcpt),
              HasSubstr("test.lua:5: action:reset() on hang, which already ends"));
  EXPECT_THAT(hook_failure(d, hook::helo),
              HasSubstr("test.lua:11: action:trickle() on close without reply, which sends no "
                        "reply to pace"));
  // On a reply they stay what they were: the reply, then a close or (the last one) a reset.
  auto o = d.start(hook::data);
  ASSERT_EQ(o.st, status::done) << o.error;
  EXPECT_EQ(o.action.reply->code, 421);
}

TEST(script_errors, hook_returning_a_field_of_the_wrong_type_is_explained) {
  driver d(
      "function on_rcpt(s, rcpt)\n  return smtp.reply(550):delay(1)\nend\n"
      "function on_data(s)\n  local a = smtp.reply(550)\n  a.code = 'x'\n  return a\nend\n");
  EXPECT_EQ(d.start(hook::rcpt).st, status::done);
  EXPECT_THAT(hook_failure(d, hook::data),
              HasSubstr("test.lua:7: on_data returned an action whose field 'code' is a string"));
}

TEST(script_errors, a_field_no_action_has_is_named) {
  // `a.delay = 5` where :delay(5) was meant: the delay would never happen without a word.
  driver d(
      "function on_rcpt(s, rcpt)\n  local a = smtp.reply(550)\n  a.delay = 5\n  return a\nend\n"
      "function on_data(s)\n  local a = smtp.reply(451)\n  a[1] = 'x'\n  return a\nend\n"
      "function on_mail(s, from)\n  return smtp.reply(550):delay(1):split(2)\nend\n");
  EXPECT_THAT(hook_failure(d, hook::rcpt),
              HasSubstr("test.lua:4: on_rcpt returned an action with a field 'delay' "
                        "that no action has; its methods (:delay(), :split(), "));
  EXPECT_THAT(hook_failure(d, hook::data),
              HasSubstr("test.lua:9: on_data returned an action with a list item or "
                        "another key that is not a name"));
  // Every field the library writes is known.
  auto mail = d.start(hook::mail);
  ASSERT_EQ(mail.st, status::done) << mail.error;
  EXPECT_EQ(mail.action.reply->code, 550);
}

TEST(script_errors, yielding_without_sleep_is_explained) {
  driver d("function on_connect(s)\n  local x = 1\n  coroutine.yield(1)\nend\n");
  const auto err = connect_failure(d);
  EXPECT_THAT(err, StartsWith("test.lua:3:"));
  EXPECT_THAT(err, HasSubstr("on_connect yielded; use smtp.sleep()"));
}

TEST(script_errors, sleeping_in_a_coroutine_of_the_scripts_own_is_explained) {
  // The yield would reach the script's own resume, not the session: no pause, and the script
  // would get an internal marker back as the coroutine's value.
  driver d(
      "function on_rcpt(s, rcpt)\n"
      "  local co = coroutine.wrap(function() smtp.sleep(0.5) return 1 end)\n"
      "  local ok, e = pcall(co)\n  error(e, 0)\nend\n"
      "function on_mail(s, from)\n  smtp.sleep(0.5)\nend\n");
  EXPECT_THAT(hook_failure(d, hook::rcpt),
              HasSubstr("test.lua:2: smtp.sleep cannot pause the session from a "
                        "coroutine the scenario made (coroutine.create, "
                        "coroutine.wrap): sleep in the hook's own code"));
  EXPECT_EQ(d.start(hook::mail).st, status::sleeping);  // in the hook itself it still sleeps
}

TEST(script_errors, expect_in_a_hook_is_refused) {
  driver d(
      "expect { quit = true }\n"
      "function on_rcpt(s, rcpt)\n  expect { delivered = 5 }\nend\n");
  EXPECT_THAT(hook_failure(d, hook::rcpt),
              HasSubstr("test.lua:3: expect: call it at the top of the scenario, not "
                        "in a hook"));
}

TEST(script_errors, a_failed_hook_leaves_the_scenario_usable) {
  driver d(
      "function on_connect(s)\n  error('boom')\nend\n"
      "function on_helo(s, name)\n  return smtp.reply(250, name)\nend\n");
  EXPECT_EQ(d.start(hook::connect).st, status::failed);
  d.greet();
  d.send("HELO client.test\r\n");
  ASSERT_FALSE(d.outcomes().empty());
  auto& [h, o] = d.outcomes().back();
  EXPECT_EQ(h, hook::helo);
  ASSERT_EQ(o.st, status::done) << o.error;
  EXPECT_EQ(o.action.reply->lines.at(0), "client.test");
}

}  // namespace
}  // namespace smtpfault::script::testing
