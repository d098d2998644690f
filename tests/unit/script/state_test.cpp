// Hooks as coroutines and state (SPEC 4): "`smtp.sleep(2)` inside a hook pauses that session
// only", "State can live per session and across sessions", and "Determinism: one seed per run".
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(sleep, start_reports_the_scaled_pause_and_resume_finishes) {
  scenario_options o = quick_options();
  o.time_scale = 0.01;
  driver d("function on_connect(s)\n  smtp.sleep(5)\n  return smtp.reply(421)\nend\n", o);
  auto first = d.start(hook::connect);
  ASSERT_EQ(first.st, status::sleeping) << first.error;
  EXPECT_EQ(first.sleep, 50ms);
  auto done = d.resume();
  ASSERT_EQ(done.st, status::done) << done.error;
  EXPECT_EQ(done.action.reply->code, 421);
}

TEST(sleep, locals_survive_several_sleeps) {
  driver d(R"(
function on_connect(s)
  local parts = {}
  for i = 1, 3 do
    parts[#parts + 1] = i
    smtp.sleep(i / 10)
  end
  return smtp.reply(250, table.concat(parts, ","))
end
)");
  auto o = d.run(hook::connect);
  EXPECT_EQ(text_of(o), "1,2,3");
  EXPECT_EQ(d.slept(), (std::vector<std::chrono::milliseconds>{100ms, 200ms, 300ms}));
}

TEST(sleep, works_inside_pcall_and_nested_functions) {
  driver d(R"(
local function wait() smtp.sleep(1) return "waited" end
function on_connect(s)
  local ok, v = pcall(wait)
  return smtp.reply(250, tostring(ok) .. " " .. v)
end
)");
  EXPECT_EQ(text_of(d.run(hook::connect)), "true waited");
  EXPECT_EQ(d.slept().size(), 1u);
}

// Inside a hook, but called by a C function, which cannot be paused: said as such.
TEST(sleep, in_a_comparator_says_why_it_cannot_pause) {
  driver d(R"(
function on_connect(s)
  local t = {3, 1, 2}
  table.sort(t, function(a, b) smtp.sleep(0.01) return a < b end)
end
)");
  auto o = d.run(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("smtp.sleep cannot pause in a function that Lua's library "
                                 "calls (a table.sort comparator"));
}

TEST(sleep, arguments_are_checked) {
  EXPECT_THAT(text_of(connect_returning("smtp.sleep(-1)")), HasSubstr("test.lua:2:"));
  EXPECT_THAT(text_of(connect_returning("smtp.sleep('x')")), HasSubstr("number expected"));
}

TEST(sleep, the_budget_covers_all_resumptions_of_one_call) {
  driver d(R"(
function on_connect(s)
  for i = 1, 100 do
    for j = 1, 100000 do end
    smtp.sleep(0)
  end
end
)");
  auto o = d.run(hook::connect);
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("instruction limit"));
}

TEST(sleep, a_sleeping_session_does_not_block_others) {
  driver d(R"(
function on_connect(s)
  s.state.n = smtp.count()
  smtp.sleep(1)
  return smtp.reply(250, "session " .. s.state.n)
end
function on_helo(s) return smtp.reply(250, "quick") end
)");
  auto& sc = d.sc();
  EXPECT_EQ(d.start(hook::connect).st, status::sleeping);
  // A second session on the same scenario runs its hooks meanwhile.
  session::transcript log("other", 100);
  session::session_facts f;
  f.session_id = "other";
  f.client_address = "127.0.0.1:40001";
  session::server_options o;
  o.hooks = sc.hooks();
  session::server_session other(o, f, log);
  auto b = sc.open_session({});
  EXPECT_EQ(text_of(sc.start(*b, hook::helo, other)), "quick");
  auto second = sc.start(*b, hook::connect, other);
  EXPECT_EQ(second.st, status::sleeping);
  EXPECT_EQ(text_of(d.resume()), "session 1");
  EXPECT_EQ(text_of(sc.resume(*b, other)), "session 2");
}

// The budget belongs to the hook call, whatever other sessions ran while it slept.
TEST(sleep, limits_still_apply_after_other_sessions_ran_meanwhile) {
  driver d(R"(
function on_connect(s)
  smtp.sleep(1)
  while true do end
end
function on_helo(s) return smtp.reply(250) end
)");
  auto& sc = d.sc();
  ASSERT_EQ(d.start(hook::connect).st, status::sleeping);
  session::transcript log("other", 100);
  session::server_session other({}, {}, log);
  auto b = sc.open_session({});
  EXPECT_EQ(sc.start(*b, hook::helo, other).st, status::done);
  auto o = d.resume();
  ASSERT_EQ(o.st, status::failed);
  EXPECT_THAT(o.error, HasSubstr("test.lua:4: instruction limit"));
}

TEST(sleep, closing_a_session_while_its_hook_sleeps_is_safe) {
  driver d("function on_connect(s)\n  smtp.sleep(10)\n  return smtp.reply(250)\nend\n");
  EXPECT_EQ(d.start(hook::connect).st, status::sleeping);
  d.open_session();  // the old binding goes away with its suspended coroutine
  EXPECT_EQ(d.start(hook::connect).st, status::sleeping);
  EXPECT_EQ(d.resume().st, status::done);
}

TEST(state, session_state_lives_as_long_as_the_session) {
  driver d(R"(
function on_connect(s)
  s.state.calls = (s.state.calls or 0) + 1
  return smtp.reply(250, tostring(s.state.calls))
end
)");
  EXPECT_EQ(text_of(d.start(hook::connect)), "1");
  EXPECT_EQ(text_of(d.start(hook::connect)), "2");
  d.open_session();
  EXPECT_EQ(text_of(d.start(hook::connect)), "1");
}

TEST(state, an_ended_sessions_hook_thread_serves_the_next_session_only_when_it_finished) {
  driver d(R"(
function on_connect(s)
  return smtp.reply(250, tostring(coroutine.running()) .. " " .. s.id)
end
function on_helo(s)
  held = coroutine.running()  -- kept alive, so no later thread can have its address
  smtp.sleep(10)
  return smtp.reply(250)
end
)");
  const auto first = text_of(d.start(hook::connect));
  d.open_session();
  const auto second = text_of(d.start(hook::connect));
  EXPECT_EQ(second.substr(0, second.rfind(' ')), first.substr(0, first.rfind(' ')));
  EXPECT_THAT(second, EndsWith(" s2"));
  EXPECT_EQ(d.start(hook::helo).st, status::sleeping);
  d.open_session();  // ends with its hook suspended: that thread is no one else's
  const auto third = text_of(d.start(hook::connect));
  EXPECT_NE(third.substr(0, third.rfind(' ')), second.substr(0, second.rfind(' ')));
  EXPECT_THAT(third, EndsWith(" s3"));
}

TEST(state, the_command_counts_metatable_is_shared_and_protected) {
  driver d(R"(
function on_connect(s)
  local ok = pcall(setmetatable, s.commands, {})
  return smtp.reply(250, tostring(getmetatable(s.commands)) .. " " .. tostring(ok) .. " " ..
                         s.commands.RCPT)
end
)");
  EXPECT_EQ(text_of(d.start(hook::connect)), "false false 0");
  d.open_session();
  EXPECT_EQ(text_of(d.start(hook::connect)), "false false 0");
}

TEST(state, scenario_state_is_shared_by_every_session) {
  driver d(R"(
local attempts = 0
seen = {}
function on_connect(s)
  attempts = attempts + 1
  seen[#seen + 1] = s.id
  if attempts <= 2 then return smtp.reply(421, "4.7.0", "try " .. attempts) end
  return smtp.reply(220, table.concat(seen, ","))
end
)");
  EXPECT_EQ(text_of(d.start(hook::connect)), "try 1");
  d.open_session();
  EXPECT_EQ(text_of(d.start(hook::connect)), "try 2");
  d.open_session();
  EXPECT_EQ(text_of(d.start(hook::connect)), "s1,s2,s3");
}

TEST(state, session_fields_follow_the_conversation) {
  driver d(R"(
function on_rcpt(s, rcpt)
  smtp.log(s.client, s.client_ip, s.client_port, s.helo, s.tls, s.lmtp, s.implicit_tls, s.messages,
           s.mail_from, #s.rcpts, s.commands.EHLO, s.commands.RCPT, s.auth_user == "",
           s.commands.DATA, s.commands.DATA < 1, s.commands.RCTP)
end
)");
  d.greet();
  d.send(
      "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n");
  ASSERT_EQ(d.script_log().size(), 2u);
  EXPECT_EQ(
      d.script_log()[0],
      "script: 127.0.0.1:40000 127.0.0.1 40000 client.test false false false 0 a@x.test 0 1 1 true "
      "0 "
      "true nil");
  EXPECT_EQ(
      d.script_log()[1],
      "script: 127.0.0.1:40000 127.0.0.1 40000 client.test false false false 0 a@x.test 1 1 2 true "
      "0 "
      "true nil");
}

// The table is refreshed only where the session changed: after RSET a same-length recipient
// list with the same last address is still a different list.
TEST(state, envelope_fields_are_fresh_after_a_reset) {
  driver d(R"(
function on_data(s) smtp.log(s.mail_from, table.concat(s.rcpts, ",")) end
)");
  d.greet();
  d.send(
      "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<a@y.test>\r\n"
      "RCPT TO:<c@y.test>\r\nDATA\r\n");
  d.send("x\r\n.\r\n");
  d.send("MAIL FROM:<b@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n");
  ASSERT_EQ(d.script_log().size(), 2u);
  EXPECT_EQ(d.script_log()[0], "script: a@x.test a@y.test,c@y.test");
  EXPECT_EQ(d.script_log()[1], "script: b@x.test b@y.test,c@y.test");
}

// on_message decides about the message just received: s.mail_from and s.rcpts are its
// transaction's, although the session's is cleared for the next one; a later hook sees that.
TEST(state, on_message_sees_the_transaction_of_its_message) {
  driver d(R"(
function on_message(s, msg) smtp.log("message", s.mail_from, table.concat(s.rcpts, ",")) end
function on_command(s, cmd)
  if cmd.verb == "NOOP" then smtp.log(cmd.verb, s.mail_from, #s.rcpts) end
end
)");
  d.greet();
  d.send(
      "EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\n"
      "DATA\r\n");
  d.send("x\r\n.\r\nNOOP\r\n");
  ASSERT_EQ(d.script_log().size(), 2u);
  EXPECT_EQ(d.script_log()[0], "script: message a@x.test b@y.test,c@y.test");
  EXPECT_EQ(d.script_log()[1], "script: NOOP  0");
}

// An empty s.rcpts may be kept from one envelope to the next, but not one a script wrote into.
TEST(state, recipients_table_a_script_wrote_into_is_replaced) {
  driver d(R"(
function on_mail(s) s.rcpts.mark = true end
function on_rcpt(s) smtp.log(#s.rcpts, tostring(s.rcpts.mark)) end
)");
  d.greet();
  d.send("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<a@y.test>\r\n");
  ASSERT_EQ(d.script_log().size(), 1u);
  EXPECT_EQ(d.script_log()[0], "script: 0 nil");
}

TEST(state, ipv6_client_address_is_split) {
  driver d("function on_connect(s) smtp.log(s.client_ip, s.client_port) end\n");
  d.open_session("[2001:db8::1]:2525");
  d.start(hook::connect);
  ASSERT_EQ(d.script_log().size(), 1u);
  EXPECT_EQ(d.script_log()[0], "script: 2001:db8::1 2525");
}

TEST(state, the_subject_is_its_text_and_the_header_as_sent) {
  driver d("function on_message(s, msg) smtp.log(msg.subject, msg.headers.subject) end\n");
  d.greet();
  d.send("EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
  d.send("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?b?S/Zsbg==?=\r\n\r\nx\r\n.\r\n");
  ASSERT_EQ(d.script_log().size(), 1u);
  EXPECT_EQ(d.script_log()[0],
            "script: Grüße aus Köln =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus =?iso-8859-1?b?S/Zsbg==?=");
}

TEST(state, hook_arguments) {
  driver d(R"(
function on_helo(s, name) smtp.log("helo", name) end
function on_ehlo(s, name) smtp.log("ehlo", name) end
function on_mail(s, m) smtp.log("mail", m.address, m.local_part, m.domain, m.params.SIZE, m.params.BODY) end
function on_rcpt(s, r) smtp.log("rcpt", r.address, r.domain, r.params.NOTIFY) end
function on_data(s) smtp.log("data", #s.rcpts) end
function on_message(s, msg)
  smtp.log("message", msg.size, msg.mail_from, msg.recipients[1], msg.subject, msg.headers["x-tag"])
end
function on_command(s, c) smtp.log("command", c.verb, c.argument, c.known) end
)");
  d.greet();
  d.send(
      "HELO one.test\r\nEHLO two.test\r\nMAIL FROM:<A@X.test> SIZE=10 BODY=8BITMIME\r\n"
      "RCPT TO:<b@y.test> NOTIFY=NEVER\r\nDATA\r\n");
  d.send("Subject: hi\r\nX-Tag: one\r\n  two\r\n\r\nbody\r\n.\r\n");
  d.send("XFOO bar baz\r\n");
  std::vector<std::string> want = {
      "script: command HELO one.test true",
      "script: helo one.test",
      "script: command EHLO two.test true",
      "script: ehlo two.test",
      "script: command MAIL FROM:<A@X.test> SIZE=10 BODY=8BITMIME true",
      "script: mail A@X.test A X.test 10 8BITMIME",
      "script: command RCPT TO:<b@y.test> NOTIFY=NEVER true",
      "script: rcpt b@y.test y.test NEVER",
      "script: command DATA  true",
      "script: data 1",
      "script: message 40 A@X.test b@y.test hi one  two",
      "script: command XFOO bar baz false"};
  EXPECT_EQ(d.script_log(), want);
}

// RFC 5321 2.3.8: a line ends with CRLF. How each command line ended, and what the message's
// text held, as a scenario that refuses bare LFs (the built-in bare-lf) needs to see them.
TEST(state, line_ends_and_anomalies_reach_the_hooks) {
  driver d(R"(
function on_command(s, c) smtp.log("command", c.verb, tostring(c.bare_lf)) end
function on_message(s, msg)
  local seen = {}
  for _, a in ipairs(msg.anomalies) do seen[#seen + 1] = a.kind .. "@" .. a.offset end
  smtp.log("message", #msg.anomalies, table.concat(seen, " "))
end
)");
  d.greet();
  d.send("EHLO c.test\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\nDATA\r\n");
  d.send("Subject: x\r\n\r\nbare\nlf and a bare\rcr\r\n.\r\n");
  d.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nclean\r\n.\r\n");
  std::vector<std::string> want = {"script: command EHLO true",
                                   "script: command MAIL nil",
                                   "script: command RCPT true",
                                   "script: command DATA nil",
                                   "script: message 2 bare_lf@18 bare_cr@32",
                                   "script: command MAIL nil",
                                   "script: command RCPT nil",
                                   "script: command DATA nil",
                                   "script: message 0 "};
  EXPECT_EQ(d.script_log(), want);
}

TEST(state, now_is_scenario_time) {
  scenario_options o = quick_options();
  o.time_scale = 0.001;
  driver d("function on_connect(s) return smtp.reply(250, type(smtp.now())) end\n", o);
  EXPECT_EQ(text_of(d.start(hook::connect)), "number");
  EXPECT_GE(d.sc().now(), 0.0);
}

// Determinism --------------------------------------------------------------------------------

const char* random_scenario = R"(
local at_load = smtp.random(1, 1000000)
function on_connect(s)
  local out = { at_load }
  for i = 1, 5 do
    out[#out + 1] = smtp.random(1, 1000000)
    out[#out + 1] = smtp.chance(0.5) and "y" or "n"
    out[#out + 1] = math.random(1, 1000000)
    out[#out + 1] = string.format("%.6f", smtp.random())
  end
  return smtp.reply(250, table.concat(out, " "))
end
)";

std::string draws(std::uint64_t seed) {
  driver d(random_scenario, quick_options(seed));
  std::string first = text_of(d.start(hook::connect));
  d.open_session();
  return first + " | " + text_of(d.start(hook::connect));
}

TEST(determinism, the_same_seed_gives_the_same_draws) {
  EXPECT_EQ(draws(42), draws(42));
  EXPECT_EQ(draws(0), draws(0));
}

TEST(determinism, another_seed_gives_other_draws) {
  EXPECT_NE(draws(42), draws(43));
  EXPECT_NE(draws(1), draws(2));
}

// Without a seed, math.randomseed takes the clock's: no replay could repeat what follows.
TEST(determinism, math_randomseed_needs_a_seed) {
  driver d("function on_connect(s)\n  math.randomseed()\nend\n");
  EXPECT_THAT(hook_failure(d, hook::connect),
              AllOf(StartsWith("test.lua:2:"), HasSubstr("math.randomseed needs a seed here")));
  // With one, it is the script's own choice, and as repeatable.
  const char* reseeded =
      "function on_connect(s) math.randomseed(7) return smtp.reply(250, math.random(1e6)) end\n";
  driver a(reseeded), b(reseeded, quick_options(99));
  EXPECT_EQ(text_of(a.start(hook::connect)), text_of(b.start(hook::connect)));
}

TEST(determinism, random_respects_its_bounds) {
  EXPECT_EQ(eval(R"((function()
    for i = 1, 1000 do
      local a, b, c = smtp.random(3), smtp.random(-2, 2), smtp.random()
      if a < 1 or a > 3 or b < -2 or b > 2 or c < 0 or c >= 1 then return "out of range" end
    end
    return "ok" end)())"),
            "ok");
  EXPECT_EQ(eval("smtp.random(5, 5)"), "5");
  EXPECT_THAT(eval("smtp.random(5, 1)"), HasSubstr("interval is empty"));
  EXPECT_EQ(eval("tostring(smtp.chance(0)) .. tostring(smtp.chance(1))"), "falsetrue");
}

}  // namespace
}  // namespace smtpfault::script::testing
