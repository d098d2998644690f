// The built-in expectations on hand-made runs.
#include "script/expectations.hpp"

#include <algorithm>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace smtpfault::script {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A pass says what held: AUTH only over TLS, or no AUTH at all (a mailer that stopped at a
// stripped STARTTLS), and a plaintext AUTH fails.
TEST(Expectations, NoPlaintextAuthSaysWhetherAnyAuthWasSent) {
  expectations e;
  e.no_plaintext_auth = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.exchanges.push_back({"EHLO x", "EHLO", 250, "250 ok", 2, {}, {}});
  EXPECT_EQ(evaluate(e, run)[0].detail, "no AUTH sent");
  s.tls_at = 3;
  s.exchanges.push_back({"AUTH PLAIN ****", "AUTH", 235, "235 ok", 5, {}, {}});
  EXPECT_EQ(evaluate(e, run)[0].detail, "AUTH only over TLS");
  s.tls_at = 0;
  EXPECT_FALSE(evaluate(e, run)[0].passed);
}

// The pipelining check judges what was sent before a reply came, not whether the replies were
// read right: its pass says that, not "replies read in order" (a client out of step after
// starttls-injection's plaintext passes it and fails the custom check).
TEST(Expectations, APipeliningPassSaysWhatItJudged) {
  expectations e;
  e.pipelining = true;
  run_outcome run;
  run.sessions.emplace_back().id = "000001";
  EXPECT_EQ(evaluate(e, run)[0].detail, "each reply waited for where RFC 2920 asks");
}

TEST(Expectations, QuitIsNotMetWhenTheClientNeverConnected) {
  expectations e;
  e.quit = true;
  auto results = evaluate(e, run_outcome{});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].name, "quit");
  EXPECT_FALSE(results[1].passed);
  EXPECT_THAT(results[1].detail, HasSubstr("never connected"));
}

// A client that closes as soon as the TLS handshake is done most likely refused the
// certificate (s-nail and Jakarta Mail refuse one given as 127.0.0.1): the reason says so.
TEST(Expectations, AQuitMissingRightAfterTheHandshakePointsAtTheCertificate) {
  expectations e;
  e.quit = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.client_closed = true;
  s.exchanges = {{"<no command>", "", 220, "220 ready", 2, {}, {}},
                 {"EHLO x", "EHLO", 250, "250 ok", 3, {}, {}},
                 {"STARTTLS", "STARTTLS", 220, "220 2.0.0 Ready to start TLS", 14, {}, {}}};
  s.tls_at = 16;
  EXPECT_THAT(evaluate(e, run).back().detail,
              HasSubstr("closed after 'STARTTLS' without QUIT (transcript line 14); it closed "
                        "right after the TLS handshake, most likely refusing the server's "
                        "certificate"));
  s.tls_at = 0;  // the handshake itself failed: another story, told by the TLS checks
  EXPECT_THAT(evaluate(e, run).back().detail, Not(HasSubstr("TLS handshake")));
}

// A pass over sessions the server ended (here at a failed TLS handshake) does not claim that
// every session ended with QUIT.
TEST(Expectations, AQuitPassSaysWhichSessionsOwedNone) {
  expectations e;
  e.quit = true;
  run_outcome run;
  auto& failed = run.sessions.emplace_back();
  failed.id = "000001";
  failed.exchanges = {{"<no command>", "", 220, "220 ready", 1, {}, {}},
                      {"STARTTLS", "STARTTLS", 220, "220 Ready to start TLS", 14, {}, {}}};
  failed.tls_failed_at = 16;
  EXPECT_EQ(evaluate(e, run).back().detail,
            "no session owed a QUIT: each ended before the client could send it, by the server "
            "(a 421, a close), in a failed TLS handshake or while the client still waited for a "
            "reply");
  auto& quit = run.sessions.emplace_back();
  quit.id = "000002";
  quit.quit = true;
  EXPECT_EQ(evaluate(e, run).back().detail,
            "every session ended with QUIT but 1, which owed none: ended before the client could "
            "send it, by the server (a 421, a close), in a failed TLS handshake or while the "
            "client still waited for a reply");
  run.sessions.erase(run.sessions.begin());
  EXPECT_EQ(evaluate(e, run).back().detail, "every session ended with QUIT");
}

// A masked line of an AUTH conversation is named by its AUTH command, not as '****' alone.
TEST(Expectations, AQuitMissingAfterAnAuthAnswerNamesTheAuthCommand) {
  expectations e;
  e.quit = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.client_closed = true;
  s.exchanges = {{"<no command>", "", 220, "220 ready", 2, {}, {}},
                 {"AUTH LOGIN", "AUTH", 334, "334 VXNlcm5hbWU6", 9, {}, {}},
                 {"****", "****", 334, "334 UGFzc3dvcmQ6", 11, {}, {}},
                 {"****", "****", 454, "454 4.7.0 Try again later", 13, {}, {}}};
  EXPECT_EQ(evaluate(e, run).back().detail,
            "expected QUIT before closing; session 000001 closed after its answer to a challenge "
            "of 'AUTH LOGIN' ('****', masked) (answered '454 4.7.0 Try again later') without QUIT "
            "(transcript line 13)");
}

// A multi-line refusal is quoted by its first line too: its last may be only a link. Each line
// is cut by itself, so a long first line does not push the last one out.
TEST(Expectations, AQuitMissingAfterAMultiLineRefusalQuotesItsFirstLine) {
  expectations e;
  e.quit = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.client_closed = true;
  s.exchanges = {{"<no command>", "", 220, "220 ready", 2, {}, {}},
                 {"RCPT TO:<bob@example.com>",
                  "RCPT",
                  550,
                  "550 5.1.1 https://x.test/bounce",
                  9,
                  {},
                  {},
                  12,
                  "550-5.1.1 No such user here"}};
  EXPECT_THAT(evaluate(e, run).back().detail,
              HasSubstr("closed after 'RCPT TO:<bob@example.com>' (answered '550-5.1.1 No such "
                        "user here ... 550 5.1.1 https://x.test/bounce') without QUIT"));
  s.exchanges.back().reply_first = "550-5.1.1 " + std::string(300, 'x');
  EXPECT_THAT(evaluate(e, run).back().detail,
              HasSubstr(std::string(150, 'x') + " ... 550 5.1.1 https://x.test/bounce')"));
}

// A mailer that resends after a timeout on the reply to its text leaves copies a real server
// would deliver: the delivered check counts them for what they are.
TEST(Expectations, DeliveredNamesTheTextsStoredButNeverAcknowledged) {
  expectations e;
  e.delivered = count_range{1, 1};
  run_outcome run;
  for (int i = 0; i < 3; ++i) {
    auto& s = run.sessions.emplace_back();
    s.id = "00000" + std::to_string(i + 1);
    s.unacknowledged = 1;
  }
  // One more whose reply was never decided: the client left during the hook's smtp.sleep.
  auto& slept = run.sessions.emplace_back();
  slept.id = "000004";
  slept.exchanges = {{"<no command>", "", 220, "220 ready", 1, {}, {}},
                     {"DATA", "DATA", 354, "354 go ahead", 5, {}, {}},
                     {"<end of data>", "", 0, "", 7, {}, {}}};
  auto results = evaluate(e, run);
  const auto& delivered = *std::find_if(results.begin(), results.end(),
                                        [](const auto& c) { return c.name == "delivered"; });
  EXPECT_FALSE(delivered.passed);
  EXPECT_EQ(delivered.detail,
            "expected 1 message(s) delivered, got 0 in 4 session(s); 4 more texts came in full but "
            "no 250 to them reached the client (a real server may have taken each all the same, "
            "which is how duplicates come about)");
}

// RFC 5321 3.1 and 3.8: after a 554 greeting the client still sends QUIT before it closes.
TEST(Expectations, QuitIsOwedAfterAGreetingThatRefusesService) {
  expectations e;
  e.quit = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.exchanges.push_back({"<no command>", "", 554, "554 5.3.2 No SMTP service here", 1, {}, {}});
  s.client_closed = true;  // after a 554 greeting the server waits for QUIT; the client left
  auto results = evaluate(e, run);
  ASSERT_EQ(results.back().name, "quit");
  EXPECT_FALSE(results.back().passed);
  EXPECT_EQ(results.back().detail,
            "expected QUIT before closing; session 000001 closed after the greeting (554) "
            "without QUIT (transcript line 1)");
  // Closed after a refusal: the refusal is in the detail, often the real failure.
  s.exchanges.push_back({"<end of data>", "", 500, "500 5.5.2 Line too long", 9, {}, {}});
  EXPECT_EQ(evaluate(e, run).back().detail,
            "expected QUIT before closing; session 000001 closed after '<end of data>' (answered "
            "'500 5.5.2 Line too long') without QUIT (transcript line 9)");
  s.exchanges.pop_back();
  s.quit = true;
  EXPECT_TRUE(evaluate(e, run).back().passed);
  // A session the server ended with a 421 greeting owes none.
  s.quit = false;
  s.exchanges[0].code = 421;
  EXPECT_TRUE(evaluate(e, run).back().passed);
  // Nor one the server closed after any other reply (a 521 greeting, a reply with :close()).
  s.exchanges[0].code = 521;
  s.client_closed = false;
  EXPECT_TRUE(evaluate(e, run).back().passed);
}

// A client that gave up waiting for a held-back reply owes no QUIT, and the 220 the transcript
// shows where the delay was decided was never sent: "closed after the greeting (220)" was false.
TEST(Expectations, NoQuitIsOwedWhileAReplyIsHeldBack) {
  expectations e;
  e.quit = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.exchanges.push_back({"<no command>", "", 220, "220 ready", 4, {}, {}});
  s.client_closed = true;
  s.reply_held = true;
  auto results = evaluate(e, run);
  EXPECT_TRUE(results.back().passed);
  EXPECT_THAT(results.back().detail, HasSubstr("while the client still waited for a reply"));
}

// A mailer that fails to start must not pass a scenario that expects it to fail and deliver
// nothing: it was never exercised.
TEST(Expectations, NothingIsMetWhenTheClientNeverConnected) {
  expectations e;
  e.delivered = count_range{0, 0};
  e.exit = {"failure"};
  run_outcome run;
  run.exit_codes = {127};
  auto results = evaluate(e, run);
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results[0].name, "connected");
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].detail, "expected the client to connect; it never did (exit status 127)");
}

TEST(Expectations, TheConnectionCheckIsThereOnlyWithoutSessions) {
  expectations e;
  e.delivered = count_range{0, 0};
  run_outcome run;
  run.sessions.emplace_back();
  for (const auto& c : evaluate(e, run))
    EXPECT_NE(c.name, "connected");
}

// STARTTLS refused in one session; what the next connection does decides.
run_outcome starttls_refused_then(bool second_uses_tls) {
  run_outcome run;
  auto& first = run.sessions.emplace_back();
  first.id = "000001";
  first.exchanges.push_back({"EHLO c", "EHLO", 250, "250 ok", 3, {}, {}});
  first.exchanges.push_back({"STARTTLS", "STARTTLS", 454, "454 4.7.0 not now", 5, {}, {}});
  first.exchanges.push_back({"QUIT", "QUIT", 221, "221 bye", 7, {}, {}});
  auto& second = run.sessions.emplace_back();
  second.id = "000002";
  if (second_uses_tls) second.tls_at = 6;
  second.exchanges.push_back({"EHLO c", "EHLO", 250, "250 ok", 3, {}, {}});
  second.exchanges.push_back({"MAIL FROM:<a@b>", "MAIL", 250, "250 ok", 9, {}, {}});
  return run;
}

TEST(Expectations, PlaintextOnANewConnectionAfterAFailedStarttlsIsADowngrade) {
  expectations e;
  e.no_plaintext_after_tls_failure = true;
  auto results = evaluate(e, starttls_refused_then(false));
  ASSERT_EQ(results.back().name, "no_plaintext_after_tls_failure");
  EXPECT_FALSE(results.back().passed);
  EXPECT_EQ(results.back().detail,
            "expected nothing in plaintext after STARTTLS failed (session 000001, transcript "
            "line 5); a new connection sent MAIL without TLS (session 000002, transcript line 9)");
  EXPECT_TRUE(evaluate(e, starttls_refused_then(true)).back().passed);
  auto implicit = starttls_refused_then(false);
  implicit.sessions[1].implicit_tls = true;
  EXPECT_TRUE(evaluate(e, implicit).back().passed);
}

// A pass where no STARTTLS failed says that nothing was put to the test, not that a failure
// was met and handled.
TEST(Expectations, NoTlsFailureIsAPassThatSaysSo) {
  expectations e;
  e.no_plaintext_after_tls_failure = true;
  auto run = starttls_refused_then(true);
  EXPECT_EQ(evaluate(e, run).back().detail, "no plaintext after a failed STARTTLS");
  run.sessions.erase(run.sessions.begin());  // the refused one
  const auto result = evaluate(e, run).back();
  EXPECT_TRUE(result.passed);
  EXPECT_EQ(result.detail,
            "nothing to fall back from: no STARTTLS was refused, and no TLS handshake failed or "
            "was given up by the client");
}

// With TLS 1.3 a client refuses the certificate after the server's side of the handshake is
// done: it closes before any command over TLS (Exim with GnuTLS sends an alert). Plaintext on the
// next connection is a fallback all the same.
TEST(Expectations, PlaintextAfterTheClientGaveUpOnTlsIsADowngrade) {
  expectations e;
  e.no_plaintext_after_tls_failure = true;
  run_outcome run;
  run.sessions.reserve(2);  // the references below stay valid
  auto& first = run.sessions.emplace_back();
  first.id = "000001";
  first.exchanges = {{"EHLO c", "EHLO", 250, "250 ok", 3, {}, {}},
                     {"STARTTLS", "STARTTLS", 220, "220 go ahead", 5, {}, {}}};
  first.tls_at = 7;
  first.client_closed = true;
  auto& second = run.sessions.emplace_back();
  second.id = "000002";
  second.exchanges = {{"EHLO c", "EHLO", 250, "250 ok", 3, {}, {}},
                      {"MAIL FROM:<a@b>", "MAIL", 250, "250 ok", 9, {}, {}}};
  auto result = evaluate(e, run).back();
  EXPECT_FALSE(result.passed);
  EXPECT_EQ(result.detail,
            "expected nothing in plaintext after the client gave up on TLS (session 000001, "
            "transcript line 7: it closed right after the handshake, before any command over "
            "TLS but a QUIT: it would not go on over that TLS session (a certificate it refused, "
            "or something it read there)); a new connection sent MAIL without TLS (session "
            "000002, transcript line 9)");
  // A QUIT over TLS is only a polite close: still given up.
  run.sessions[0].exchanges.push_back({"QUIT", "QUIT", 221, "221 bye", 8, {}, {}});
  EXPECT_FALSE(evaluate(e, run).back().passed);
  // One that went on over TLS (an EHLO) did not give up on it.
  run.sessions[0].exchanges.back() = {"EHLO c", "EHLO", 250, "250 ok", 8, {}, {}};
  EXPECT_TRUE(evaluate(e, run).back().passed);
  // On the implicit-TLS port the greeting comes after the handshake: a close after it alone
  // is giving up too.
  run.sessions[0].implicit_tls = true;
  run.sessions[0].tls_at = 2;
  run.sessions[0].exchanges = {{"<no command>", "", 220, "220 ready", 3, {}, {}}};
  EXPECT_FALSE(evaluate(e, run).back().passed);
}

TEST(Expectations, PlaintextInTheSessionWhereStarttlsFailedIsADowngrade) {
  expectations e;
  e.no_plaintext_after_tls_failure = true;
  auto run = starttls_refused_then(true);
  run.sessions[0].exchanges[2] = {"MAIL FROM:<a@b>", "MAIL", 250, "250 ok", 7, {}, {}};
  auto results = evaluate(e, run);
  EXPECT_FALSE(results.back().passed);
  EXPECT_THAT(results.back().detail, HasSubstr("it went on with MAIL in plaintext"));
}

TEST(Expectations, SlipsInTheDataPointToTheirFirstTranscriptLine) {
  expectations e;
  e.line_length = true;
  e.dot_stuffing = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000003";
  s.long_lines = 2;
  s.first_long_line_at = 17;
  s.unstuffed_dots = 1;
  s.first_unstuffed_dot_at = 19;
  std::map<std::string, std::string> detail;
  for (const auto& c : evaluate(e, run))
    detail[c.name] = c.detail;
  EXPECT_EQ(detail["line_length"],
            "expected no lines over the limit; session 000003 had 2, the first at transcript "
            "line 17");
  EXPECT_EQ(detail["dot_stuffing"],
            "expected no unstuffed leading dots; session 000003 had 1, the first at transcript "
            "line 19 (a line of the message that begins with \".\" went without its dot "
            "doubled, RFC 5321 4.5.2: the server took the dot away, so the stored text lost it, "
            "and a line of only \".\" would have ended the message there)");
  // A line "." that ended the message early is told as that, not as a dot taken away.
  run.sessions.back().data_ended_at_dot_line = true;
  for (const auto& c : evaluate(e, run))
    detail[c.name] = c.detail;
  EXPECT_THAT(detail["dot_stuffing"],
              ::testing::EndsWith("(a line of only \".\" went without its dot doubled, RFC 5321 "
                                  "4.5.2: it ended the message there, and what followed was read "
                                  "as commands)"));
}

// RFC 5321 2.3.8: only CRLF ends a line. The reason names the first bare CR or LF as the
// transcript notes it.
TEST(Expectations, LineEndingsNameTheFirstBareLineEnd) {
  expectations e;
  e.line_endings = true;
  run_outcome run;
  auto& clean = run.sessions.emplace_back();
  clean.id = "000001";
  auto& s = run.sessions.emplace_back();
  s.id = "000002";
  EXPECT_TRUE(evaluate(e, run).back().passed);
  s.bare_line_ends = 2;
  s.first_bare_line_end_at = 5;
  s.first_bare_line_end = "bare_lf: the command line ended with a bare LF";
  const auto verdict = evaluate(e, run).back();
  EXPECT_EQ(verdict.name, "line_endings");
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.detail,
            "expected every line to end with CRLF and no CR or LF alone (RFC 5321 2.3.8); "
            "session 000002 had 2, the first at transcript line 5: bare_lf: the command line "
            "ended with a bare LF");
}

// RFC 2920 3.1: with PIPELINING offered, MAIL, RCPT and DATA may go together, but EHLO (and
// DATA, QUIT, ...) end a group.
TEST(Expectations, PipeliningBehindEhloFailsWherePipeliningIsOffered) {
  expectations e;
  e.pipelining = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000004";
  s.pipelining_advertised = true;
  s.pipelined = true;
  EXPECT_TRUE(evaluate(e, run).back().passed) << "MAIL, RCPT and DATA together";
  s.pipelined_after = "EHLO";
  s.pipelined_after_at = 12;
  const auto verdict = evaluate(e, run).back();
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.detail,
            "expected the client to wait for the reply to EHLO before sending more (RFC 2920 "
            "3.1: EHLO ends a pipelined group); more came behind it without waiting (session "
            "000004, transcript line 12)");
}

TEST(Expectations, PipeliningWherePipeliningIsHiddenPointsAtTheTranscript) {
  expectations e;
  e.pipelining = true;
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.pipelined = true;
  s.pipelined_at = 7;
  const auto verdict = evaluate(e, run).back();
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.detail,
            "expected no pipelining: the server did not advertise PIPELINING, but the client sent "
            "commands without waiting for replies (session 000001, transcript line 7)");
}

}  // namespace
}  // namespace smtpfault::script

namespace smtpfault::script {
namespace {

// A 450 to RCPT, then a new session with MAIL half a second later.
run_outcome retried_after_half_a_second() {
  const auto t0 = std::chrono::system_clock::now();
  run_outcome run;
  capture::session_summary first;
  first.id = "1";
  first.started = t0;
  first.exchanges.push_back({"RCPT TO:<a@x.test>", "RCPT", 450, "450 4.7.1 later", 3, t0, {}});
  capture::session_summary second;
  second.id = "2";
  second.started = t0 + std::chrono::milliseconds(500);
  second.exchanges.push_back(
      {"MAIL FROM:<b@y.test>", "MAIL", 250, "250 ok", 2, second.started, {}});
  run.sessions = {first, second};
  return run;
}

// The line named is the refusal's, not its command's: between them may be the scenario's notes
// and the lines of a multi-line reply.
TEST(Expectations, ARefusalNeverRetriedIsNamedByItsReplyLine) {
  expectations e;
  e.retried_after_4xx = true;
  auto run = retried_after_half_a_second();
  run.sessions.pop_back();
  run.sessions[0].exchanges[0].reply_line = 5;
  auto results = evaluate(e, run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].passed);
  EXPECT_THAT(results[0].detail,
              HasSubstr("expected a new attempt after '450 4.7.1 later' (session 1, transcript "
                        "line 5)"));
}

// smtplib's login() goes on to its next mechanism after a 454 to CRAM-MD5's response: that is
// no retry of the refused one, and the reason does not call it one.
TEST(Expectations, AnotherMechanismAfterA454IsNotCalledARetry) {
  expectations e;
  e.retried_after_4xx = true;
  const auto t0 = std::chrono::system_clock::now();
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.started = t0;
  s.exchanges = {{"AUTH CRAM-MD5", "AUTH", 334, "334 PDE+", 30, t0, {}, 31},
                 {"****", "AUTH", 454, "454 4.7.0 later", 32, t0, {}, 33},
                 {"AUTH PLAIN ****", "AUTH", 454, "454 4.7.0 later", 34, t0, {}, 35}};
  auto verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.detail,
            "expected a new attempt after '454 4.7.0 later' (session 000001, transcript line 33); "
            "the client tried another mechanism on the same connection ('AUTH PLAIN ****', "
            "transcript line 34) and then never came back");
  // The refused mechanism again, on the same connection after a pause: a retry (a connection
  // cache's).
  s.exchanges[2] = {
      "AUTH CRAM-MD5", "AUTH", 454, "454 4.7.0 later", 34, t0 + std::chrono::seconds(6), {}, 35};
  verdict = evaluate(e, run)[0];
  EXPECT_TRUE(verdict.passed) << verdict.detail;
  EXPECT_EQ(verdict.detail,
            "retried after 6.00 s (scenario time) on the same connection (session 000001, "
            "transcript line 34)");
}

// A connection cache (OpenSMTPD's, Postfix's) or a pooled sender waits a 4xx out on the
// connection it holds: the first retry counts, there or on a new connection, and its delay.
TEST(Expectations, ARetryOnTheSameConnectionCounts) {
  expectations e;
  e.retried_after_4xx = true;
  const auto t0 = std::chrono::system_clock::now();
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.started = t0;
  s.exchanges = {
      {"RCPT TO:<a@x.test>", "RCPT", 451, "451 4.7.1 later", 30, t0, {}, 31},
      {"RSET", "RSET", 250, "250 ok", 32, t0, {}, 33},
      {"MAIL FROM:<b@y.test>", "MAIL", 250, "250 ok", 34, t0 + std::chrono::seconds(6), {}, 35}};
  auto verdict = evaluate(e, run)[0];
  EXPECT_TRUE(verdict.passed) << verdict.detail;
  EXPECT_EQ(verdict.detail,
            "retried after 6.00 s (scenario time) on the same connection (session 000001, "
            "transcript line 34)");
  e.retry_delay_min = 10;
  verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.name, "retry_delay");
  // Asking again in the same breath is no waiting out: the hammering the scenarios look for.
  e.retry_delay_min.reset();
  s.exchanges[2].at = t0 + std::chrono::milliseconds(300);
  verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.detail,
            "expected a new attempt after '451 4.7.1 later' (session 000001, transcript line 31); "
            "the client asked again on the same connection at once ('MAIL FROM:<b@y.test>', 0.30 s "
            "of scenario time later, transcript line 34) and never after a pause, nor on a later "
            "connection: a retry on the same connection counts after a pause of 5 s or more "
            "(scenario time), as a connection cache waits a 4xx out");
  // The pause is in scenario time: 0.3 s at --time-scale 0.02 is 15 s.
  run.time_scale = 0.02;
  EXPECT_TRUE(evaluate(e, run)[0].passed);
}

// After a 454 to AUTH, MAIL on that connection goes on without authenticating: no retry of
// the AUTH (dma does this), and said so.
TEST(Expectations, MailAfterARefusedAuthIsNoRetryOfIt) {
  expectations e;
  e.retried_after_4xx = true;
  const auto t0 = std::chrono::system_clock::now();
  run_outcome run;
  auto& s = run.sessions.emplace_back();
  s.id = "000001";
  s.started = t0;
  s.exchanges = {{"AUTH PLAIN ****", "AUTH", 454, "454 4.7.0 later", 30, t0, {}, 31},
                 {"MAIL FROM:<b@y.test>", "MAIL", 250, "250 ok", 32, t0, {}, 33}};
  auto verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.detail,
            "expected a new attempt after '454 4.7.0 later' (session 000001, transcript line 31); "
            "the client went on without AUTH on the same connection ('MAIL FROM:<b@y.test>', "
            "transcript line 32) and never tried AUTH again");
  // After a refused STARTTLS a login in plaintext does not excuse the MAIL that follows.
  s.exchanges = {{"STARTTLS", "STARTTLS", 454, "454 4.7.0 later", 30, t0, {}, 31},
                 {"AUTH PLAIN ****", "AUTH", 235, "235 2.7.0 ok", 32, t0, {}, 33},
                 {"MAIL FROM:<b@y.test>", "MAIL", 250, "250 ok", 34, t0, {}, 35}};
  EXPECT_THAT(evaluate(e, run)[0].detail,
              HasSubstr("the client went on without STARTTLS on the same connection ('MAIL "
                        "FROM:<b@y.test>', transcript line 34)"));
}

TEST(Expectations, ARetryDelayWithOnlyAMinimumSaysAtLeast) {
  expectations e;
  e.retried_after_4xx = true;
  e.retry_delay_min = 1;
  auto results = evaluate(e, retried_after_half_a_second());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].passed);
  EXPECT_THAT(results[0].detail, HasSubstr("expected a retry delay of at least 1.00 s"));
  e.retry_delay_min.reset();
  e.retry_delay_max = 0.25;
  EXPECT_THAT(evaluate(e, retried_after_half_a_second())[0].detail,
              HasSubstr("expected a retry delay of at most 0.25 s"));
}

}  // namespace
}  // namespace smtpfault::script

namespace smtpfault::script {
namespace {

capture::session_summary& add_session(run_outcome& run, std::string id,
                                      std::chrono::system_clock::time_point started) {
  auto& s = run.sessions.emplace_back();
  s.id = std::move(id);
  s.started = started;
  return s;
}

// Nothing to retry passes too, but the detail must not read as a client that heeded a 5xx.
TEST(Expectations, NoRetryAfter5xxSaysWhetherThereWasOne) {
  expectations e;
  e.no_retry_after_5xx = true;
  const auto t0 = std::chrono::system_clock::now();
  run_outcome run;
  auto& first = add_session(run, "1", t0);
  first.exchanges.push_back({"RCPT TO:<a@x.test>", "RCPT", 250, "250 ok", 3, t0, {}});
  auto results = evaluate(e, run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].passed);
  EXPECT_EQ(results[0].detail, "no 5xx reply was sent, so nothing was put to the test");
  run.sessions[0].exchanges[0] = {"RCPT TO:<a@x.test>", "RCPT", 550, "550 5.1.1 no", 3, t0, {}};
  results = evaluate(e, run);
  EXPECT_TRUE(results[0].passed);
  EXPECT_THAT(results[0].detail, HasSubstr("no new attempt after '550 5.1.1 no'"));
  auto& second = add_session(run, "2", t0 + std::chrono::seconds(1));
  second.exchanges.push_back(
      {"MAIL FROM:<b@y.test>", "MAIL", 250, "250 ok", 2, second.started, {}});
  // Only the recipients that were not refused: RFC 5321 4.2.5 asks no more of a client.
  second.exchanges.push_back(
      {"RCPT TO:<other@x.test>", "RCPT", 250, "250 ok", 4, second.started, {}});
  EXPECT_TRUE(evaluate(e, run)[0].passed) << evaluate(e, run)[0].detail;
  second.exchanges.push_back(
      {"RCPT TO:<A@x.test>", "RCPT", 550, "550 5.1.1 no", 6, second.started, {}});
  results = evaluate(e, run);
  EXPECT_FALSE(results[0].passed);
  EXPECT_THAT(results[0].detail, HasSubstr("the client tried again in session 2"));
  // The command's second run (runs = 2) is the test's doing, not the client's retry.
  run.run_starts = {t0 - std::chrono::seconds(1), t0 + std::chrono::milliseconds(500)};
  EXPECT_TRUE(evaluate(e, run)[0].passed) << evaluate(e, run)[0].detail;
}

// RFC 5321 4.2.1: after a 5yz the client "SHOULD NOT repeat the exact request (in the same
// sequence)": the same refused recipient or sender line again on the connection is a retry.
TEST(Expectations, TheSameRefusedRequestOnTheSameConnectionIsARetry) {
  expectations e;
  e.no_retry_after_5xx = true;
  const auto t0 = std::chrono::system_clock::now();
  run_outcome run;
  auto& s = add_session(run, "000001", t0);
  s.exchanges = {{"RCPT TO:<a@x.test>", "RCPT", 550, "550 5.1.1 no", 3, t0, {}},
                 {"RCPT TO:<b@x.test>", "RCPT", 250, "250 ok", 4, t0, {}},
                 {"RSET", "RSET", 250, "250 ok", 5, t0, {}},
                 {"MAIL FROM:<s@y.test>", "MAIL", 250, "250 ok", 6, t0, {}}};
  EXPECT_TRUE(evaluate(e, run)[0].passed) << evaluate(e, run)[0].detail;
  s.exchanges.push_back({"RCPT TO:<A@x.test>", "RCPT", 550, "550 5.1.1 no", 7, t0, {}});
  auto verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(verdict.detail,
            "expected no retry after '550 5.1.1 no' (session 000001, transcript line 3); the "
            "client sent the same RCPT again on that connection (transcript line 7)");
  // After AUTH it is another sequence: a relay refused before AUTH may be granted after it.
  s.exchanges.insert(s.exchanges.begin() + 1, {"AUTH PLAIN", "AUTH", 235, "235 ok", 4, t0, {}});
  EXPECT_TRUE(evaluate(e, run)[0].passed) << evaluate(e, run)[0].detail;
  // A refused sender line sent again as it was.
  s.exchanges = {{"MAIL FROM:<s@y.test>", "MAIL", 550, "550 5.7.1 no", 3, t0, {}},
                 {"MAIL FROM:<t@y.test>", "MAIL", 250, "250 ok", 4, t0, {}},
                 {"RSET", "RSET", 250, "250 ok", 5, t0, {}},
                 {"mail from:<s@y.test>", "MAIL", 550, "550 5.7.1 no", 6, t0, {}}};
  verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_THAT(verdict.detail, HasSubstr("the same MAIL again on that connection (transcript "
                                        "line 6)"));
}

TEST(Expectations, ARetryIsOfTheSameRun) {
  expectations e;
  e.retried_after_4xx = true;
  auto run = retried_after_half_a_second();
  EXPECT_TRUE(evaluate(e, run)[0].passed);
  // The second session came with the command's second run: the first run gave up.
  run.run_starts = {run.sessions[0].started, run.sessions[1].started};
  auto verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_THAT(verdict.detail, HasSubstr("the client never came back (neither that connection "
                                        "nor a later one sent MAIL again)"));
  run.sessions[0].exchanges[0] = {"VRFY a", "VRFY", 450, "450 4.7.0 later", 3, {}, {}};
  verdict = evaluate(e, run)[0];
  EXPECT_FALSE(verdict.passed);
  EXPECT_EQ(
      verdict.detail,
      "not exercised: no 4xx reply to the greeting, STARTTLS, AUTH, MAIL, RCPT, DATA, BDAT or the "
      "message was sent ('450 4.7.0 later' to VRFY does not count)");
}

// RFC 4954 6 and RFC 3207 4: a 454 to AUTH or STARTTLS is temporary. A new connection that
// sends the command again (refused again, it never gets to MAIL) or MAIL is the retry.
TEST(Expectations, A454ToAuthOrStarttlsIsRetriedLikeOneToRcpt) {
  expectations e;
  e.retried_after_4xx = true;
  for (const char* verb : {"AUTH", "STARTTLS"}) {
    auto run = retried_after_half_a_second();
    const std::string command = std::string(verb) + (verb[0] == 'A' ? " PLAIN" : "");
    const auto first = run.sessions[0].started, second = run.sessions[1].started;
    run.sessions[0].exchanges[0] = {command, verb, 454, "454 4.7.0 later", 3, first, {}};
    auto verdict = evaluate(e, run)[0];
    EXPECT_TRUE(verdict.passed) << verdict.detail;
    EXPECT_EQ(verdict.detail, "retried after 0.50 s (scenario time) in session 2");
    run.sessions[1].exchanges[0] = {command, verb, 454, "454 4.7.0 later", 2, second, {}};
    EXPECT_TRUE(evaluate(e, run)[0].passed) << verb;
    run.sessions[1].exchanges[0] = {"NOOP", "NOOP", 250, "250 ok", 2, second, {}};
    verdict = evaluate(e, run)[0];
    EXPECT_FALSE(verdict.passed);
    EXPECT_THAT(verdict.detail, HasSubstr("neither that connection nor a later one sent " +
                                          std::string(verb) + " or MAIL again"));
  }
  // A 5xx to AUTH is no permanent refusal of the mail: a retry after it is not held against
  // the client.
  expectations no_retry;
  no_retry.no_retry_after_5xx = true;
  auto run = retried_after_half_a_second();
  run.sessions[0].exchanges[0] = {
      "AUTH PLAIN", "AUTH", 535, "535 5.7.8 no", 3, run.sessions[0].started, {}};
  EXPECT_TRUE(evaluate(no_retry, run)[0].passed);
}

TEST(Expectations, ACommandKilledByASignalIsSaidToBe) {
  expectations e;
  e.exit = {"success"};
  run_outcome run;
  run.sessions.emplace_back();
  run.exit_codes = {0, 139};
  run.exit_signals = {0, 11};
  auto results = evaluate(e, run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].detail, "expected exit status success, got 0, 139: killed by SIGSEGV");
}

TEST(Expectations, ACrashIsNotAReportedFailure) {
  // greeting-521 wants the mailer to report failure; a segfault must not pass for that.
  expectations e;
  e.exit = {"failure"};
  run_outcome run;
  run.sessions.emplace_back();
  run.exit_codes = {139};
  run.exit_signals = {11};
  auto results = evaluate(e, run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].detail,
            "expected exit status failure, got 139: killed by SIGSEGV (a crash is not a reported "
            "failure)");
  e.exit = {"139"};  // asked for by number, a crash is what was asked for
  EXPECT_TRUE(evaluate(e, run)[0].passed);
  e.exit = {"failure"};
  run.exit_signals = {0};  // exit(139) of its own accord is a failure it reported
  EXPECT_TRUE(evaluate(e, run)[0].passed);
}

// One status per run: starttls-bad-cert's four refusals and then a delivery.
TEST(Expectations, AnExitStatusPerRunIsCheckedRunByRun) {
  expectations e;
  e.exit = {"failure", "failure", "success"};
  run_outcome run;
  run.sessions.emplace_back();
  run.exit_codes = {1, 1, 0};
  auto results = evaluate(e, run);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].passed) << results[0].detail;
  run.exit_codes = {1, 1, 1};
  results = evaluate(e, run);
  EXPECT_FALSE(results[0].passed);
  EXPECT_EQ(results[0].detail,
            "expected exit status failure, failure, success (one per run), got 1, 1, 1");
  run.exit_codes = {0, 1, 0};
  EXPECT_FALSE(evaluate(e, run)[0].passed);
  // A run cut short (interrupted) leaves fewer statuses: the ones there are judged.
  run.exit_codes = {1};
  EXPECT_TRUE(evaluate(e, run)[0].passed);
}

// Each distinct hook error once, with its first session and how many more it failed in; past
// five distinct ones, a count.
TEST(Expectations, FailedHooksAreListedOncePerDistinctError) {
  run_outcome run;
  EXPECT_FALSE(failed_hooks(run));
  auto session = [&](std::string id, std::string error) {
    auto& s = run.sessions.emplace_back();
    s.id = std::move(id);
    s.scenario_error = std::move(error);
  };
  session("000001", "a.lua:3: boom");
  session("000002", "");
  session("000003", "a.lua:3: boom");
  session("000004", "a.lua:9: other");
  EXPECT_EQ(failed_hooks(run),
            "a.lua:3: boom (session 000001 and 1 more); a.lua:9: other (session 000004)");
  for (int i = 5; i <= 9; ++i)
    session("00000" + std::to_string(i), "b.lua:" + std::to_string(i) + ": x");
  EXPECT_THAT(*failed_hooks(run), ::testing::EndsWith("; and 2 other errors"));
}

}  // namespace
}  // namespace smtpfault::script
