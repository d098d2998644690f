// Fault actions (SPEC 4 "Fault actions"): every constructor of lua/smtp.lua, as the host reads
// it into a fault::action.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using namespace std::chrono_literals;
using strings = std::vector<std::string>;

// The action `return <expr>` gives, failing the test when the hook fails.
fault::action action_of(const std::string& expr, double time_scale = 1.0) {
  scenario_options o = quick_options();
  o.time_scale = time_scale;
  auto out = connect_returning(expr, o);
  EXPECT_EQ(out.st, status::done) << expr << ": " << out.error;
  return out.action;
}

TEST(actions, returning_nothing_keeps_the_default) {
  EXPECT_TRUE(action_of("nil").is_default());
  EXPECT_TRUE(connect_returning("").action.is_default());
}

TEST(actions, reply_with_code_only_uses_the_standard_text) {
  auto a = action_of("smtp.reply(550)");
  ASSERT_TRUE(a.reply);
  EXPECT_EQ(a.reply->code, 550);
  EXPECT_EQ(a.reply->enhanced, "");
  EXPECT_EQ(a.reply->lines, strings{"Requested action not taken: mailbox unavailable"});
  EXPECT_EQ(a.name, "reply 550");
  EXPECT_EQ(a.end, fault::ending::none);
  EXPECT_TRUE(a.rejects());
}

TEST(actions, reply_with_code_and_text) {
  auto a = action_of("smtp.reply(451, 'try later')");
  EXPECT_EQ(a.reply->code, 451);
  EXPECT_EQ(a.reply->enhanced, "");
  EXPECT_EQ(a.reply->lines, strings{"try later"});
}

TEST(actions, reply_with_code_enhanced_code_and_text) {
  auto a = action_of("smtp.reply(451, '4.7.1', 'Greylisted, try again later')");
  EXPECT_EQ(a.reply->code, 451);
  EXPECT_EQ(a.reply->enhanced, "4.7.1");
  EXPECT_EQ(a.reply->lines, strings{"Greylisted, try again later"});
}

TEST(actions, reply_with_enhanced_code_and_no_text) {
  auto a = action_of("smtp.reply(250, '2.0.0')");
  EXPECT_EQ(a.reply->enhanced, "2.0.0");
  EXPECT_EQ(a.reply->lines, strings{"Ok"});
}

TEST(actions, reply_with_several_lines) {
  auto a = action_of("smtp.reply(250, {'first', 'second', 'third'})");
  EXPECT_EQ(a.reply->enhanced, "");
  EXPECT_EQ(a.reply->lines, (strings{"first", "second", "third"}));
  auto b = action_of("smtp.reply(452, '4.5.3', {'one', 'two'})");
  EXPECT_EQ(b.reply->enhanced, "4.5.3");
  EXPECT_EQ(b.reply->lines, (strings{"one", "two"}));
  EXPECT_EQ(action_of("smtp.reply(250, {''})").reply->lines, strings{""});
}

TEST(actions, reply_then_close) {
  auto a = action_of("smtp.reply_then_close(421, '4.3.2', 'going down')");
  EXPECT_EQ(a.reply->code, 421);
  EXPECT_EQ(a.reply->enhanced, "4.3.2");
  EXPECT_EQ(a.end, fault::ending::close_after_reply);
}

TEST(actions, delay_is_scaled_by_the_time_scale) {
  auto a = action_of("smtp.delay(5)", 0.01);
  EXPECT_EQ(a.delay, 50ms);
  EXPECT_FALSE(a.reply);
  EXPECT_FALSE(a.is_default());
  EXPECT_EQ(action_of("smtp.delay(1.5)").delay, 1500ms);
}

TEST(actions, trickle) {
  auto a = action_of("smtp.trickle(1, 0.2)");
  EXPECT_EQ(a.trickle_bytes, 1u);
  EXPECT_EQ(a.trickle_every, 200ms);
  EXPECT_EQ(action_of("smtp.trickle(3, 2)", 0.5).trickle_every, 1000ms);
}

TEST(actions, split) {
  auto a = action_of("smtp.split(1, 4, 10)");
  EXPECT_EQ(a.split_at, (std::vector<std::size_t>{1, 4, 10}));
  EXPECT_FALSE(a.reply);
}

TEST(actions, raw) {
  auto a = action_of("smtp.raw('250-no final line\\r\\n')");
  ASSERT_TRUE(a.raw);
  EXPECT_EQ(*a.raw, "250-no final line\r\n");
}

TEST(actions, malformed_each_kind) {
  const std::pair<const char*, fault::malformed_kind> kinds[] = {
      {"mixed_codes", fault::malformed_kind::mixed_codes},
      {"missing_space", fault::malformed_kind::missing_space},
      {"long_line", fault::malformed_kind::long_line},
      {"garbage", fault::malformed_kind::garbage}};
  for (const auto& [name, kind] : kinds) {
    auto a = action_of(std::string("smtp.malformed('") + name + "')");
    EXPECT_EQ(a.malformed, kind) << name;
    ASSERT_TRUE(a.reply) << name;
    EXPECT_EQ(a.reply->code, 250) << name;
  }
  auto b = action_of("smtp.malformed('mixed_codes', 451, '4.3.0', {'a', 'b'})");
  EXPECT_EQ(b.reply->code, 451);
  EXPECT_EQ(b.reply->lines, (strings{"a", "b"}));
}

TEST(actions, endings) {
  EXPECT_EQ(action_of("smtp.close()").end, fault::ending::close_without_reply);
  EXPECT_EQ(action_of("smtp.drop()").end, fault::ending::close_without_reply);
  auto lose = action_of("smtp.lose()");
  EXPECT_EQ(lose.end, fault::ending::close_without_reply);
  EXPECT_EQ(lose.name, "accept then lose");
  EXPECT_EQ(action_of("smtp.reset()").end, fault::ending::reset);
  EXPECT_EQ(action_of("smtp.hang()").end, fault::ending::hang);
}

TEST(actions, unsolicited) {
  auto a = action_of("smtp.unsolicited(30, 421, '4.4.2', 'idle too long')", 0.1);
  ASSERT_TRUE(a.unsolicited);
  EXPECT_EQ(a.unsolicited->after, 3000ms);
  EXPECT_EQ(a.unsolicited->reply.code, 421);
  EXPECT_EQ(a.unsolicited->reply.enhanced, "4.4.2");
  EXPECT_EQ(a.unsolicited->reply.lines, strings{"idle too long"});
  EXPECT_TRUE(a.unsolicited->close);
  EXPECT_FALSE(a.reply);

  auto d = action_of("smtp.unsolicited(1)");
  EXPECT_EQ(d.unsolicited->reply.code, 421);
  auto keep = action_of("smtp.unsolicited(1, 220, 'hello again', nil, {close = false})");
  EXPECT_FALSE(keep.unsolicited->close);
  // The options right after the code or the text: not taken for the text.
  auto early = action_of("smtp.unsolicited(1, 250, {close = false})");
  EXPECT_FALSE(early.unsolicited->close);
  EXPECT_EQ(early.unsolicited->reply.lines, strings{"Ok"});
  auto after_text = action_of("smtp.unsolicited(1, 250, 'hi', {close = false})");
  EXPECT_FALSE(after_text.unsolicited->close);
  EXPECT_EQ(after_text.unsolicited->reply.lines, strings{"hi"});
  // A 421 closes whatever the options say (RFC 5321 3.8): asking otherwise is an error.
  EXPECT_THAT(
      text_of(connect_returning("smtp.unsolicited(1, 421, {close = false})")),
      ::testing::HasSubstr("test.lua:2: smtp.unsolicited: a 421 always closes the connection"));
  // A misspelt or mistyped option is an error, not an option left at its default.
  EXPECT_THAT(text_of(connect_returning("smtp.unsolicited(1, 250, 'hi', {clsoe = false})")),
              ::testing::HasSubstr("test.lua:2: smtp.unsolicited: no option 'clsoe' (did you mean "
                                   "'close'?); it takes close"));
  EXPECT_THAT(text_of(connect_returning("smtp.unsolicited(1, 250, {close = 'no'})")),
              ::testing::HasSubstr("smtp.unsolicited: option close must be a boolean, not string"));
}

TEST(actions, starttls_each_mode) {
  EXPECT_EQ(action_of("smtp.starttls('close_after_220')").tls_mode,
            fault::starttls_mode::close_after_220);
  EXPECT_EQ(action_of("smtp.starttls('abort_handshake')").tls_mode,
            fault::starttls_mode::abort_handshake);
  auto inject = action_of("smtp.starttls('inject')");
  EXPECT_EQ(inject.tls_mode, fault::starttls_mode::inject_plaintext);
  EXPECT_EQ(inject.inject, "250 2.0.0 injected\r\n");
  EXPECT_EQ(action_of("smtp.starttls('inject', {data = 'X\\r\\n'})").inject, "X\r\n");
  EXPECT_THAT(text_of(connect_returning("smtp.starttls('inject', {dta = 'X'})")),
              ::testing::HasSubstr("test.lua:2: smtp.starttls: no option 'dta' (did you mean "
                                   "'data'?); it takes data"));
  EXPECT_THAT(text_of(connect_returning("smtp.starttls('inject', {data = 7})")),
              ::testing::HasSubstr("smtp.starttls: option data must be a string, not number"));
  EXPECT_THAT(text_of(connect_returning("smtp.starttls('close_after_220', {data = 'X'})")),
              ::testing::HasSubstr("smtp.starttls: no option 'data'; it takes none here"));
}

TEST(actions, certificate_each_kind) {
  const std::pair<const char*, fault::certificate_kind> kinds[] = {
      {"self_signed", fault::certificate_kind::self_signed},
      {"expired", fault::certificate_kind::expired},
      {"wrong_host", fault::certificate_kind::wrong_host},
      {"unknown_ca", fault::certificate_kind::unknown_ca}};
  for (const auto& [name, kind] : kinds) {
    auto a = action_of(std::string("smtp.certificate('") + name + "')");
    EXPECT_EQ(a.certificate, kind) << name;
    EXPECT_EQ(a.tls_mode, fault::starttls_mode::normal) << name;
  }
}

TEST(actions, hide_and_extensions) {
  auto h = action_of("smtp.hide('PIPELINING', 'CHUNKING')");
  EXPECT_EQ(h.hide, (strings{"PIPELINING", "CHUNKING"}));
  EXPECT_FALSE(h.extensions);
  auto e = action_of("smtp.extensions({'SIZE 1000', '8BITMIME'})");
  ASSERT_TRUE(e.extensions);
  EXPECT_EQ(*e.extensions, (strings{"SIZE 1000", "8BITMIME"}));
  // An empty list is a real choice: advertise nothing.
  auto none = action_of("smtp.extensions({})");
  ASSERT_TRUE(none.extensions);
  EXPECT_TRUE(none.extensions->empty());
  EXPECT_FALSE(none.is_default());
}

TEST(actions, challenge) {
  auto a = action_of("smtp.challenge('not base64!')");
  ASSERT_TRUE(a.auth_challenge);
  EXPECT_EQ(*a.auth_challenge, "not base64!");
  EXPECT_EQ(*action_of("smtp.challenge('')").auth_challenge, "");
}

TEST(actions, chaining) {
  auto closed = action_of("smtp.reply(421):close()");
  EXPECT_EQ(closed.reply->code, 421);
  EXPECT_EQ(closed.end, fault::ending::close_after_reply);

  auto delayed = action_of("smtp.reply(250):delay(2)", 0.5);
  EXPECT_EQ(delayed.reply->code, 250);
  EXPECT_EQ(delayed.delay, 1000ms);

  auto all = action_of("smtp.reply(451, '4.3.0', 'x'):delay(1):trickle(2, 0.1):split(3, 5)");
  EXPECT_EQ(all.delay, 1000ms);
  EXPECT_EQ(all.trickle_bytes, 2u);
  EXPECT_EQ(all.trickle_every, 100ms);
  EXPECT_EQ(all.split_at, (std::vector<std::size_t>{3, 5}));

  EXPECT_EQ(action_of("smtp.reply(554):reset()").end, fault::ending::reset);
  EXPECT_EQ(action_of("smtp.raw('x'):close()").end, fault::ending::close_after_reply);

  // The same method twice: the second wins (a field named like the method hid it).
  EXPECT_EQ(action_of("smtp.reply(451):delay(1):delay(2)").delay, 2000ms);
  EXPECT_EQ(action_of("smtp.delay(1):delay(3)").delay, 3000ms);
  EXPECT_EQ(action_of("smtp.split(2):split(4, 6)").split_at, (std::vector<std::size_t>{4, 6}));
}

// A method makes a new action: one kept in a variable and varied once stays as it was for
// every later use (the variation leaked into every session).
TEST(actions, a_method_leaves_the_action_it_was_called_on_unchanged) {
  driver d(
      "local REJECT = smtp.reply(550, '5.1.1', 'no such user')\n"
      "local n = 0\n"
      "function on_connect(s)\n"
      "  n = n + 1\n"
      "  if n == 1 then return REJECT:delay(1):trickle(1, 0.1):split(2):close() end\n"
      "  if n == 2 then return REJECT:reset() end\n"
      "  return REJECT\n"
      "end\n",
      quick_options());
  const auto varied = d.start(hook::connect);
  ASSERT_EQ(varied.st, status::done) << varied.error;
  EXPECT_EQ(varied.action.delay, 1000ms);
  EXPECT_EQ(varied.action.end, fault::ending::close_after_reply);
  EXPECT_EQ(d.start(hook::connect).action.end, fault::ending::reset);
  const auto plain = d.start(hook::connect);
  ASSERT_EQ(plain.st, status::done) << plain.error;
  EXPECT_EQ(plain.action.reply->code, 550);
  EXPECT_EQ(plain.action.delay, 0ms);
  EXPECT_EQ(plain.action.trickle_bytes, 0u);
  EXPECT_TRUE(plain.action.split_at.empty());
  EXPECT_EQ(plain.action.end, fault::ending::none);
}

TEST(actions, constructor_arguments_are_checked) {
  for (const char* expr :
       {"smtp.malformed('odd')", "smtp.starttls('later')", "smtp.certificate('bad')",
        "smtp.trickle(0, 1)", "smtp.trickle(1, -1)", "smtp.split()", "smtp.split('a')",
        "smtp.raw(5)", "smtp.hide(1)", "smtp.extensions('SIZE')", "smtp.challenge(nil)",
        "smtp.reply(250, 5)", "smtp.reply(250, '2.0.0', {1})", "smtp.reply(600)",
        "smtp.reply(250.5)", "smtp.unsolicited(-1)", "smtp.delay(0/0)",
        // An empty list of lines sends no text: a mistake, not a reply.
        "smtp.reply(550, '5.1.1', {})",
        // Cuts that write nothing between them: backwards, repeated, before the first octet.
        "smtp.split(500, 3)", "smtp.split(3, 3)", "smtp.split(0)", "smtp.split(2.5)",
        "smtp.split(math.huge)", "smtp.split(2^63)",
        // The method checks its offsets as smtp.split does.
        "smtp.reply(250):split(500, 3)", "smtp.reply(250):split()", "smtp.reply(250):split('a')",
        // NaN compares false with everything: no count of octets either.
        "smtp.trickle(0/0, 1)", "smtp.reply(250):trickle(0/0, 1)", "smtp.trickle(math.huge, 1)"}) {
    auto o = connect_returning(expr);
    EXPECT_EQ(o.st, status::failed) << expr;
    EXPECT_THAT(o.error, ::testing::StartsWith("test.lua:2:")) << expr;
  }
  // NaN is no count of seconds, said as such ("must be >= 0" sent one looking for a sign).
  EXPECT_THAT(connect_returning("smtp.delay(0/0)").error,
              ::testing::HasSubstr("seconds must be a number, not NaN"));
}

// A table built or changed by hand meets what smtp.reply checks: no code out of range (a cast
// of 1e300 is undefined behaviour), no CR, LF or NUL smuggling a second reply into the text.
// A table changed after smtp.* made it, or given smtp's metatable by hand (a plain table is no
// action at all), is checked field by field as the library's own are.
std::string as_action(const std::string& expr) {
  return expr.starts_with("{") ? "setmetatable(" + expr + ", getmetatable(smtp.reply(250)))" : expr;
}

TEST(actions, hand_made_tables_meet_the_reply_checks) {
  for (const char* expr :
       {"{code = 1e300}", "{code = 0/0}", "{code = -1}", "{code = 42, lines = {'x'}}",
        "{code = 250.5}", "{malformed = 'mixed_codes', code = 99999}",
        "{code = 250, enhanced = '2.1.0', lines = {'ok\\r\\n354 inject'}}",
        "{code = 250, enhanced = 'garbage\\r\\nX'}", "{code = 250, lines = {'a\\0b'}}",
        "{unsolicited = {code = 1e300}}",
        "(function() local a = smtp.reply(451) a.code = 1e300 return a end)()",
        "(function() local a = smtp.reply(451) a.lines = {'x\\ny'} return a end)()",
        "{code = 250, trickle_bytes = -1}", "{code = 250, trickle_bytes = 0/0}",
        "{code = 250, delay_seconds = 1e300}", "{code = 250, trickle_every = -1}",
        "{unsolicited = {code = 421, close = false}}", "{name = ('n'):rep(300), code = 250}",
        // One string named many times: each copy would leave the sandbox.
        "(function() local big, l = ('a'):rep(1000000), {} for i = 1, 100 do l[i] = big end "
        "return setmetatable({code = 250, lines = l}, getmetatable(smtp.reply(250))) end)()"}) {
    auto o = connect_returning(as_action(expr));
    EXPECT_EQ(o.st, status::failed) << expr;
    EXPECT_THAT(o.error, ::testing::HasSubstr("returned an action whose")) << expr;
  }
  // The check of a long text is no pattern: it costs no pattern steps from the budget.
  auto long_text = connect_returning("smtp.reply(250, '2.1.0', {('x'):rep(3000000)})");
  EXPECT_EQ(long_text.st, status::done) << long_text.error;
  auto fine = connect_returning(as_action("{code = 550, enhanced = '5.7.1', lines = {'no'}}"));
  ASSERT_EQ(fine.st, status::done) << fine.error;
  EXPECT_EQ(fine.action.reply->code, 550);
}

// A scenario's globals named like Lua's own (`type`, `string`) are its business: the library
// keeps working.
TEST(actions, globals_of_the_scenario_do_not_break_the_library) {
  driver d(
      "type = 'greylist'\nstring, table, error = 1, 2, 3\n"
      "function on_mail(s, m) return smtp.reply(451, '4.7.1', 'later'):delay(0) end\n");
  auto o = d.start(hook::mail);
  ASSERT_EQ(o.st, status::done) << o.error;
  EXPECT_EQ(o.action.reply->code, 451);
}

// The session side: the action reaches the reply the client sees.
TEST(actions, a_hook_reply_reaches_the_client) {
  driver d(
      "function on_rcpt(s, rcpt)\n"
      "  if rcpt.domain == 'blocked.test' then return smtp.reply(550, '5.7.1', 'no') end\n"
      "end\n");
  d.greet();
  d.send("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\n");
  EXPECT_EQ(d.send("RCPT TO:<b@blocked.test>\r\n"), "550 no\n");
  EXPECT_EQ(d.send("RCPT TO:<b@fine.test>\r\n"), "250 Recipient <b@fine.test> OK\n");
}

// A BDAT a scenario refuses still has its chunk on the way: it is read and dropped, never taken
// for commands (a chunk of "RSET / MAIL ..." would smuggle a transaction in).
TEST(actions, a_refused_bdat_chunk_is_dropped_not_run) {
  driver d(
      "function on_command(s, cmd)\n"
      "  if cmd.verb == 'BDAT' and not cmd.argument:find('^3%f[%D]') then\n"
      "    return smtp.reply(451, '4.3.0', 'chunk refused')\n"
      "  end\n"
      "end\n");
  d.greet();
  d.send("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  const std::string chunk = "RSET\r\nMAIL FROM:<evil@x.test>\r\n";
  EXPECT_EQ(d.send("BDAT " + std::to_string(chunk.size()) + "\r\n" + chunk), "451 chunk refused\n");
  EXPECT_EQ(d.send("NOOP\r\n"), "250 Ok\n");
  // The refusal failed the transaction: a chunk pipelined after it stores nothing.
  EXPECT_EQ(d.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 3\r\nabc"),
            "250 Sender <a@x.test> OK\n250 Recipient <b@y.test> OK\n250 3 octets received\n");
  EXPECT_EQ(d.send("BDAT 5\r\nXXXXXBDAT 3 LAST\r\nxyz"),
            "451 chunk refused\n503 Need MAIL command\n");
  // Without a size the chunk cannot be skipped: the session ends, as for the server's own.
  EXPECT_EQ(d.send("BDAT x\r\n"),
            "451 chunk refused\n421 smtpfault.test Malformed BDAT, closing connection\n");
  EXPECT_TRUE(d.session().closed());
}

// A BDAT is answered after its chunk: a reply on_command gives it (a 250 of its own) is that
// answer, for a LAST chunk too, whose message is still taken.
TEST(actions, a_reply_given_to_a_bdat_answers_its_chunk) {
  driver d(
      "function on_command(s, cmd)\n"
      "  if cmd.verb == 'BDAT' then return smtp.reply(250, '2.6.0', 'chunk taken') end\n"
      "end\n");
  d.greet();
  d.send("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  EXPECT_EQ(d.send("BDAT 5\r\nhello"), "250 chunk taken\n");
  EXPECT_EQ(d.send("BDAT 3 LAST\r\nx\r\n"), "250 chunk taken\n");
  bool taken = false;  // the message, whole: the reply replaced only the words
  for (const auto& e : d.transcript().entries())
    taken = taken || e.text == "message of 8 octets, 1 recipient(s)";
  EXPECT_TRUE(taken);
  EXPECT_EQ(d.send("NOOP\r\n"), "250 Ok\n") << "nothing of the fault is left over";
  // An empty LAST chunk, taken at once with its command.
  d.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  EXPECT_EQ(d.send("BDAT 0 LAST\r\n"), "250 chunk taken\n");
}

// A 2xx given to a BDAT never covers a refusal of the server's: it would acknowledge what was
// not taken (a message over the line limit, a chunk outside any transaction).
TEST(actions, a_reply_given_to_a_bdat_does_not_cover_the_servers_refusal) {
  driver d(
      "function on_command(s, cmd)\n"
      "  if cmd.verb == 'BDAT' then return smtp.reply(250, '2.6.0', 'chunk taken') end\n"
      "end\n");
  d.greet();
  d.send("EHLO client.test\r\n");
  EXPECT_EQ(d.send("BDAT 3\r\nabc"), "503 Need MAIL command\n");
  d.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  const std::string long_line = std::string(1100, 'x') + "\r\n";
  const auto refused = d.send("BDAT " + std::to_string(long_line.size()) + " LAST\r\n" + long_line);
  EXPECT_EQ(refused.substr(0, 4), "500 ") << refused;
  for (const auto& e : d.transcript().entries())
    EXPECT_NE(e.text.rfind("message of ", 0), 0u) << "nothing was taken: " << e.text;
  // The next transaction's chunk is answered by its own command's fault, nothing older.
  d.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  EXPECT_EQ(d.send("BDAT 1 LAST\r\nx"), "250 chunk taken\n");
}

// RFC 2033 4.2: after the data an LMTP server answers once per recipient, fault or not; a
// single answer would leave the client waiting, or reading the next reply as the second one's.
TEST(actions, lmtp_a_message_fault_answers_for_every_recipient) {
  const std::string envelope =
      "LHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b1@y.test>\r\n"
      "RCPT TO:<b2@y.test>\r\n";
  for (const char* action :
       {"smtp.reply(452, '4.2.2', 'Mailbox full')", "smtp.reply(250, '2.0.0', 'Delivered')"}) {
    driver d(std::string("function on_message(s, m) return ") + action + " end\n");
    d.use_lmtp();
    d.greet();
    d.send(envelope);
    std::string out = d.send("DATA\r\nhi\r\n.\r\nNOOP\r\n");
    // (The driver shows replies as the transcript has them: code and text.)
    const std::string each = action[11] == '4' ? "452 Mailbox full\n" : "250 Delivered\n";
    EXPECT_THAT(out, ::testing::HasSubstr("\n" + each + each + "250 Ok\n")) << action;
  }
  // An ending comes after the last recipient's answer.
  driver d("function on_message(s, m) return smtp.reply_then_close(554, '5.6.0', 'No') end\n");
  d.use_lmtp();
  d.greet();
  d.send(envelope);
  EXPECT_THAT(d.send("DATA\r\nhi\r\n.\r\n"), ::testing::HasSubstr("\n554 No\n554 No\n"));
  EXPECT_TRUE(d.session().closed());
}

// A 250 from a hook where the server itself refuses (RCPT before MAIL) reaches the client, but
// the command changes nothing: the transcript says so, or the missing recipient is a mystery.
TEST(actions, a_success_over_the_servers_own_refusal_is_noted) {
  driver d("function on_rcpt(s, r) return smtp.reply(250, '2.1.5', 'sure') end\n");
  d.greet();
  EXPECT_EQ(d.send("EHLO c\r\nRCPT TO:<a@b.example>\r\n"),
            "250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\n250 sure\n");
  bool noted = false;
  for (const auto& e : d.transcript().entries())
    noted = noted || e.text ==
                         "the scenario's 250 replaces the server's own refusal (503 Need "
                         "MAIL before RCPT): the command changed nothing";
  EXPECT_TRUE(noted);
  EXPECT_TRUE(d.session().current_envelope().recipients.empty());
}

// smtp.each_recipient answers the final dot; from another hook it would vanish without a word.
TEST(actions, each_recipient_outside_on_message_is_noted) {
  driver d("function on_rcpt(s, r) return smtp.each_recipient{ smtp.reply(550) } end\n");
  d.use_lmtp();
  d.greet();
  EXPECT_THAT(d.send("LHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"),
              ::testing::EndsWith("\n250 Recipient <c@d.example> OK\n"));
  bool noted = false;
  for (const auto& e : d.transcript().entries())
    noted = noted || e.text == "each_recipient is for on_message: on_rcpt ignores it";
  EXPECT_TRUE(noted);
}

// smtp.lose() accepts a message and loses it; from on_rcpt it can only close, and says so. At
// the end of a message it notes nothing of the kind.
TEST(actions, lose_outside_on_message_is_noted) {
  driver d("function on_rcpt(s, r) return smtp.lose() end\n");
  d.greet();
  d.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n");
  EXPECT_TRUE(d.session().closed());
  bool noted = false;
  for (const auto& e : d.transcript().entries()) {
    noted = noted || e.text ==
                         "smtp.lose is for on_message: on_rcpt closes the connection without a "
                         "reply instead (smtp.close)";
  }
  EXPECT_TRUE(noted);
  driver at_end("function on_message(s, m) return smtp.lose() end\n");
  at_end.greet();
  at_end.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\n");
  EXPECT_TRUE(at_end.session().closed());
  for (const auto& e : at_end.transcript().entries())
    EXPECT_EQ(e.text.find("smtp.lose is for"), std::string::npos) << e.text;
}

// smtp.ehlo_keywords(): the default list, to add a keyword to without restating the others.
TEST(actions, ehlo_keywords_give_the_list_to_add_to) {
  driver d(
      "function on_ehlo(s, name)\n"
      "  local k = smtp.ehlo_keywords()\n"
      "  table.insert(k, 'XCLIENT NAME ADDR')\n"
      "  return smtp.extensions(k)\n"
      "end\n");
  d.greet();
  d.send("EHLO c\r\n");
  const auto lines = d.session().advertised_keywords();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "PIPELINING");
  EXPECT_EQ(lines.back(), "XCLIENT NAME ADDR");
  EXPECT_EQ(lines.size(), 10u);
  EXPECT_THAT(load_error("local k = smtp.ehlo_keywords()\n"),
              ::testing::HasSubstr("test.lua:1: smtp.ehlo_keywords can only be used inside hooks"));
}

}  // namespace
}  // namespace smtpfault::script::testing
