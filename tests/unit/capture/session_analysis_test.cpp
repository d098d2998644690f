// What a transcript says about a session: here, LMTP's replies after the data, one per recipient.
#include "capture/session_analysis.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace smtpfault::capture {
namespace {

using session::direction;

session_record lmtp_transaction(bool lmtp) {
  session_record r;
  r.facts.lmtp = lmtp;
  // Each command with its reply, then the two replies to the data (one per accepted recipient).
  const std::pair<const char*, const char*> exchanges[] = {
      {"MAIL FROM:<s@example.com>", "250 2.1.0 Ok"},
      {"RCPT TO:<a@example.com>", "250 2.1.5 Ok"},
      {"RCPT TO:<nobody@example.com>", "550 5.1.1 No such user"},
      {"RCPT TO:<b@example.com>", "250 2.1.5 Ok"},
      {"DATA", "354 Go ahead"},
  };
  for (const auto& [command, reply] : exchanges) {
    r.entries.push_back({{}, direction::client, command});
    r.entries.push_back({{}, direction::server, reply});
  }
  r.entries.push_back({{}, direction::event, "message of 12 octets, 2 recipient(s)"});
  r.entries.push_back({{}, direction::server, "250 2.0.0 Ok: queued as 1"});
  r.entries.push_back({{}, direction::server, "552 5.2.2 Mailbox full"});
  return r;
}

// RFC 2033 4.2: one reply per accepted recipient, in RCPT order; each is the message's reply
// for that recipient, not an unsolicited one.
TEST(session_analysis, lmtp_replies_after_the_data_answer_each_accepted_recipient) {
  auto s = summarize(lmtp_transaction(true));
  ASSERT_EQ(s.exchanges.size(), 7u);
  const auto& first = s.exchanges[5];
  const auto& second = s.exchanges[6];
  EXPECT_EQ(first.command, "<end of data>");
  EXPECT_EQ(first.recipient, "a@example.com");
  EXPECT_EQ(first.code, 250);
  EXPECT_EQ(second.command, "<end of data>");
  EXPECT_EQ(second.recipient, "b@example.com");
  EXPECT_EQ(second.code, 552);
  EXPECT_EQ(s.delivered, 1u);  // one message, whoever accepted it
}

// A scenario's 250 over the server's own refusal adds no recipient: the replies after the data
// answer the recipients the server took.
TEST(session_analysis, a_recipient_the_server_refused_under_a_scenarios_250_gets_no_reply) {
  auto r = lmtp_transaction(true);
  r.entries[5] = {{},
                  direction::event,
                  "the scenario's 250 replaces the server's own refusal (550 No such user): the "
                  "command changed nothing"};
  r.entries.insert(r.entries.begin() + 6, {{}, direction::server, "250 2.1.5 sure"});
  auto s = summarize(r);
  ASSERT_EQ(s.exchanges.size(), 7u);
  EXPECT_EQ(s.exchanges[2].code, 250);
  EXPECT_EQ(s.exchanges[5].recipient, "a@example.com");
  EXPECT_EQ(s.exchanges[6].recipient, "b@example.com");
}

// A message quoting a multi-line reply shows its first line, which says what happened, and
// its last; a one-line reply as it is.
TEST(session_analysis, a_multi_line_reply_is_quoted_by_its_first_and_last_lines) {
  session_record r;
  r.entries.push_back({{}, direction::client, "RCPT TO:<b@example.com>"});
  r.entries.push_back({{}, direction::server, "550-5.1.1 No such account"});
  r.entries.push_back({{}, direction::server, "550-5.1.1 Check the spelling"});
  r.entries.push_back({{}, direction::server, "550 5.1.1 https://example.com/help"});
  r.entries.push_back({{}, direction::client, "QUIT"});
  r.entries.push_back({{}, direction::server, "221 2.0.0 Bye"});
  const auto s = summarize(r);
  ASSERT_EQ(s.exchanges.size(), 2u);
  EXPECT_EQ(s.exchanges[0].reply, "550 5.1.1 https://example.com/help");
  EXPECT_EQ(quoted_reply(s.exchanges[0]),
            "550-5.1.1 No such account ... 550 5.1.1 https://example.com/help");
  EXPECT_EQ(quoted_reply(s.exchanges[1]), "221 2.0.0 Bye");
}

TEST(session_analysis, over_smtp_a_second_reply_after_the_data_is_unsolicited) {
  auto s = summarize(lmtp_transaction(false));
  ASSERT_EQ(s.exchanges.size(), 7u);
  EXPECT_EQ(s.exchanges[5].command, "<end of data>");
  EXPECT_EQ(s.exchanges[5].recipient, "");
  EXPECT_EQ(s.exchanges[6].command, "<no command>");
}

// A 250 held back (a scenario's delay) is in the transcript where it was decided; when the
// client leaves before it goes out, the message is stored but not delivered as the client
// knows it.
TEST(session_analysis, a_250_that_never_left_is_not_a_delivery) {
  session_record r;
  for (const auto& [command, reply] : std::initializer_list<std::pair<const char*, const char*>>{
           {"MAIL FROM:<s@example.com>", "250 2.1.0 Ok"},
           {"RCPT TO:<a@example.com>", "250 2.1.5 Ok"},
           {"DATA", "354 Go ahead"}}) {
    r.entries.push_back({{}, direction::client, command});
    r.entries.push_back({{}, direction::server, reply});
  }
  r.entries.push_back({{}, direction::event, "message of 12 octets, 1 recipient(s)"});
  r.entries.push_back({{}, direction::server, "250 2.0.0 Ok: queued as 1"});
  EXPECT_EQ(summarize(r).delivered, 1u);
  r.entries.push_back(
      {{}, direction::event, "reply not sent: the client left while it was held back"});
  EXPECT_TRUE(summarize(r).reply_held);
  r.entries.push_back(
      {{}, direction::event, "message 1 was stored, but its reply was never written"});
  const auto s = summarize(r);
  EXPECT_EQ(s.delivered, 0u);
  EXPECT_EQ(s.unacknowledged, 1u);
}

// The end of the data with no reply after it (the scenario lost the message, or held the
// reply): the exchange is timed when the data ended, not at the clock's epoch.
TEST(session_analysis, an_unanswered_end_of_data_has_the_time_the_data_ended) {
  const std::chrono::system_clock::time_point t0{std::chrono::seconds{1'700'000'000}};
  session_record r;
  r.entries.push_back({t0, direction::client, "DATA"});
  r.entries.push_back({t0, direction::server, "354 Go ahead"});
  r.entries.push_back({t0 + std::chrono::seconds(2), direction::event, "message of 5 octets"});
  auto s = summarize(r);
  ASSERT_EQ(s.exchanges.size(), 2u);
  EXPECT_EQ(s.exchanges[1].command, "<end of data>");
  EXPECT_EQ(s.exchanges[1].code, 0);
  EXPECT_EQ(s.exchanges[1].at, t0 + std::chrono::seconds(2));
}

TEST(session_analysis, the_command_pipelined_past_is_named_with_its_line) {
  session_record r;
  r.entries.push_back({{}, direction::client, "EHLO client.test"});
  r.entries.push_back({{}, direction::server, "250 smtpfault.test"});
  r.entries.push_back({{}, direction::event, "client pipelined commands"});
  auto s = summarize(r);
  EXPECT_TRUE(s.pipelined);
  EXPECT_EQ(s.pipelined_at, 3u);
  EXPECT_EQ(s.pipelined_after, "");
  r.entries.push_back({{},
                       direction::event,
                       "client pipelined commands after EHLO, which ends a group (RFC 2920 3.1)"});
  s = summarize(r);
  EXPECT_EQ(s.pipelined_after, "EHLO");
  EXPECT_EQ(s.pipelined_after_at, 4u);
  EXPECT_EQ(s.pipelined_at, 3u) << "the first note stays the first";
}

TEST(session_analysis, pipelining_is_advertised_by_its_keyword_line_only) {
  session_record r;
  r.entries.push_back({{}, direction::client, "EHLO PIPELINING.example"});
  r.entries.push_back({{}, direction::server, "250-smtpfault.test greets PIPELINING.example"});
  r.entries.push_back({{}, direction::server, "250 SIZE 10485760"});
  EXPECT_FALSE(summarize(r).pipelining_advertised);
  r.entries.back().text = "250-PIPELINING";
  r.entries.push_back({{}, direction::server, "250 SIZE 10485760"});
  EXPECT_TRUE(summarize(r).pipelining_advertised);
}

// AUTH LOGIN: the user name and password answer 334 challenges; what the server says to the
// last one (here a 454) is the AUTH command's answer.
TEST(session_analysis, lines_answering_a_challenge_belong_to_auth) {
  session_record r;
  for (const auto& [command, reply] : std::initializer_list<std::pair<const char*, const char*>>{
           {"AUTH LOGIN", "334 VXNlcm5hbWU6"},
           {"****", "334 UGFzc3dvcmQ6"},
           {"****", "454 4.7.0 Temporary authentication failure"},
           {"NOOP", "250 2.0.0 Ok"},
           // A scenario's 334 to another command: what follows is a command of its own.
           {"VRFY a", "334 odd"},
           {"MAIL FROM:<a@b.example>", "250 2.1.0 Ok"}}) {
    r.entries.push_back({{}, direction::client, command});
    r.entries.push_back({{}, direction::server, reply});
  }
  auto s = summarize(r);
  ASSERT_EQ(s.exchanges.size(), 6u);
  EXPECT_EQ(s.exchanges[5].verb, "MAIL");
  EXPECT_EQ(s.exchanges[1].verb, "AUTH");
  EXPECT_EQ(s.exchanges[2].verb, "AUTH");
  EXPECT_EQ(s.exchanges[2].command, "****");
  EXPECT_EQ(s.exchanges[2].code, 454);
  EXPECT_EQ(s.exchanges[3].verb, "NOOP");
}

// A reply that cannot be written found the client gone: it left without QUIT, and the server
// did not end the session (a check for QUIT must not excuse it).
// A reason about a refusal points at the refusal: the reply's last line, which comes after
// the command, and after an event line the server noted between them.
TEST(session_analysis, an_exchange_knows_the_line_of_its_reply) {
  session_record r;
  r.entries.push_back({{}, direction::client, "MAIL FROM:<s@example.com>"});
  r.entries.push_back({{}, direction::event, "fault: reply 421"});
  r.entries.push_back({{}, direction::server, "421-4.4.2 first"});
  r.entries.push_back({{}, direction::server, "421 4.4.2 Error: timeout exceeded"});
  auto s = summarize(r);
  ASSERT_EQ(s.exchanges.size(), 1u);
  EXPECT_EQ(s.exchanges[0].line, 1u);
  EXPECT_EQ(s.exchanges[0].reply_line, 4u);
}

// A command sent while a reply was held back is named by the exchange the reply answers, with
// the command that came; input that was only the client's close (a TLS close_notify) is not.
TEST(session_analysis, the_command_whose_held_reply_the_client_did_not_wait_for) {
  session_record r;
  r.entries.push_back({{}, direction::client, "RCPT TO:<a@example.com>"});
  r.entries.push_back({{}, direction::event, "fault: delay"});
  r.entries.push_back({{}, direction::server, "250 2.1.5 Recipient <a@example.com> OK"});
  r.entries.push_back({{},
                       direction::event,
                       "input came while the reply was held back: 6 octet(s) on the wire (a "
                       "command sent without waiting for the reply, or the client's TLS close)"});
  r.entries.push_back({{}, direction::event, "reply sent, 1.80 s after it was decided"});
  r.entries.push_back({{}, direction::client, "RSET"});
  auto s = summarize(r);
  EXPECT_EQ(s.sent_while_held, "RCPT");
  EXPECT_EQ(s.sent_while_held_at, 4u);
  EXPECT_EQ(s.sent_while_held_command, "RSET");
  r.entries.pop_back();  // the input was the client's close
  EXPECT_EQ(summarize(r).sent_while_held, "");
}

TEST(session_analysis, a_failed_reply_write_means_the_client_left) {
  session_record r;
  r.entries.push_back({{}, direction::server, "220 ready"});
  r.entries.push_back({{}, direction::client, "RCPT TO:<a@example.com>"});
  r.entries.push_back({{}, direction::server, "554 5.7.1 Relay access denied"});
  EXPECT_FALSE(summarize(r).client_closed);
  r.entries.push_back({{}, direction::event, "write failed: Broken pipe"});
  EXPECT_TRUE(summarize(r).client_closed);
}

// Bare CRs and LFs, in command lines and in the message text, as the server notes them: each
// counts, and the first is kept for the line_endings verdict.
TEST(session_analysis, bare_line_ends_are_counted_from_the_first) {
  session_record r;
  r.entries.push_back({{}, direction::client, "EHLO c.test"});
  r.entries.push_back({{}, direction::server, "250 smtpfault"});
  r.entries.push_back({{}, direction::event, "anomaly: bare_cr in the command line at offset 4"});
  r.entries.push_back({{}, direction::client, "MAIL FROM:<s@example.com>"});
  r.entries.push_back(
      {{}, direction::event, "anomaly: bare_lf: the command line ended with a bare LF"});
  r.entries.push_back({{}, direction::event, "anomaly: bare_lf at offset 19"});
  r.entries.push_back({{}, direction::event, "anomaly: long_line at offset 1000"});
  const auto s = summarize(r);
  EXPECT_EQ(s.bare_line_ends, 3u);
  EXPECT_EQ(s.first_bare_line_end_at, 3u);
  EXPECT_EQ(s.first_bare_line_end, "bare_cr in the command line at offset 4");
  EXPECT_EQ(s.long_lines, 1u);
}

// Each kind of anomaly once, in the order first noted: a pass's note names the second kind too.
TEST(session_analysis, each_kind_of_anomaly_is_named_once) {
  session_record r;
  for (const char* note :
       {"anomaly: unstuffed_dot at offset 777", "anomaly: undeclared_8bit at offset 80",
        "anomaly: bare_lf: the command line ended in LF alone",
        "anomaly: unstuffed_dot at offset 900"})
    r.entries.push_back({{}, direction::event, note});
  const auto s = summarize(r);
  EXPECT_EQ(s.anomalies, 4u);
  EXPECT_EQ(s.first_anomaly, "unstuffed_dot at offset 777");
  EXPECT_EQ(s.anomaly_kinds,
            (std::vector<std::string>{"unstuffed_dot", "undeclared_8bit", "bare_lf"}));
  EXPECT_FALSE(s.data_ended_at_dot_line);
  session_record ended;
  ended.entries.push_back({{},
                           direction::event,
                           "anomaly: unstuffed_dot: the data ended at a line \".\" with \"x\" "
                           "behind it"});
  EXPECT_TRUE(summarize(ended).data_ended_at_dot_line);
}

// A client gone during a hook's smtp.sleep, before any reply was decided, left while its reply
// was held back, as one gone during smtp.delay does.
TEST(session_analysis, a_client_gone_during_a_sleeping_hook_left_while_held) {
  session_record r;
  r.entries.push_back({{}, direction::client, "RCPT TO:<b@example.com>"});
  r.entries.push_back(
      {{}, direction::event, "client closed the connection (while the server paused)"});
  EXPECT_TRUE(summarize(r).reply_held);
  session_record answered;  // a reply went out: the pause was after it (a trickle, a close)
  answered.entries.push_back({{}, direction::client, "RCPT TO:<b@example.com>"});
  answered.entries.push_back({{}, direction::server, "250 ok"});
  answered.entries.push_back(
      {{}, direction::event, "client closed the connection (while the server paused)"});
  EXPECT_FALSE(summarize(answered).reply_held);
}

}  // namespace
}  // namespace smtpfault::capture
