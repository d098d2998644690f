// server_session: greeting, EHLO/HELO, the mail transaction and its sequencing rules, command
// syntax, endings, pipelining and framing independence (limits and ESMTP parameters:
// server_session_limits_test.cpp).
#include "session/server_session.hpp"

#include <gtest/gtest.h>
#include <algorithm>

#include <string>
#include <vector>

#include "conversation.hpp"

namespace smtpfault::session::testing {
namespace {

using strings = std::vector<std::string>;

TEST(server_session, greets_with_220_and_hostname) {
  conversation c(server_options{}, /*start=*/false);
  EXPECT_EQ(c.output(), "");
  c.session().start(t0);
  EXPECT_EQ(c.send(""), wire::greeting);
  EXPECT_FALSE(c.closed());
}

TEST(server_session, ehlo_lists_every_extension) {
  conversation c;
  EXPECT_EQ(c.send("EHLO client.test\r\n"), wire::ehlo_all);
  EXPECT_EQ(c.session().facts().helo, "client.test");
}

// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF.
TEST(server_session, a_long_client_name_is_shortened_in_the_reply) {
  conversation c;
  const std::string name(490, 'n');
  std::string r = c.send("EHLO " + name + "\r\n");
  const std::string first = r.substr(0, r.find("\r\n") + 2);
  EXPECT_EQ(first.size(), 512u);
  EXPECT_TRUE(first.ends_with("nnn...\r\n")) << first;
  EXPECT_EQ(c.session().facts().helo, name);  // kept whole, for the log and the scenario
}

TEST(server_session, control_octets_in_the_client_name_are_not_echoed) {
  conversation c;
  using namespace std::string_literals;
  std::string r = c.send("EHLO a\0b\rc\x1b[31m\xc3\xa9\r\n"s);
  EXPECT_EQ(r.substr(0, r.find("\r\n") + 2), "250-smtpfault.test greets a?b?c?[31m??\r\n");
  EXPECT_EQ(c.session().facts().helo, "a\0b\rc\x1b[31m\xc3\xa9"s);  // kept as sent, for the log
}

TEST(server_session, hidden_extensions_are_not_advertised) {
  conversation c(without({extension::pipelining, extension::chunking, extension::auth}));
  EXPECT_EQ(c.send("EHLO client.test\r\n"),
            "250-smtpfault.test greets client.test\r\n"
            "250-SIZE 10485760\r\n"
            "250-8BITMIME\r\n"
            "250-SMTPUTF8\r\n"
            "250-ENHANCEDSTATUSCODES\r\n"
            "250-DSN\r\n"
            "250 STARTTLS\r\n");
}

TEST(server_session, starttls_is_not_advertised_without_a_certificate) {
  server_options o;
  o.starttls_available = false;
  conversation c(o);
  EXPECT_EQ(c.send("EHLO client.test\r\n").find("STARTTLS"), std::string::npos);
  EXPECT_EQ(c.send("STARTTLS\r\n"), "502 5.5.1 STARTTLS not available\r\n");
}

// RFC 2034 section 3: enhanced codes only once the client has seen ENHANCEDSTATUSCODES.
TEST(server_session, helo_gives_no_enhanced_codes_and_ehlo_does) {
  conversation c;
  EXPECT_EQ(c.send("HELO client.test\r\n"), wire::helo_ok);
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok_plain);
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), "250 Sender <a@x.test> OK\r\n");
  c.ehlo();
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok);
}

// After HELO no extension was offered: SIZE= or BODY= is a client that forgot it fell back.
TEST(server_session, esmtp_parameters_after_helo_are_refused) {
  conversation c;
  c.send("HELO client.test\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=100 BODY=8BITMIME\r\n"),
            "555 Parameter SIZE not recognized after HELO: ESMTP parameters need EHLO\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), "250 Sender <a@x.test> OK\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=NEVER\r\n"),
            "555 Parameter NOTIFY not recognized after HELO: ESMTP parameters need EHLO\r\n");
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=100\r\n"), wire::sender_ok("a@x.test"));
}

TEST(server_session, hidden_enhancedstatuscodes_turns_enhanced_codes_off) {
  conversation c(without({extension::enhancedstatuscodes}));
  EXPECT_EQ(c.send("EHLO client.test\r\n").find("ENHANCEDSTATUSCODES"), std::string::npos);
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok_plain);
}

TEST(server_session, full_transaction_stores_message_with_envelope_and_params) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=100 BODY=8BITMIME\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE\r\n"),
            wire::recipient_ok("b@y.test"));
  EXPECT_EQ(c.send("RCPT TO:<c@y.test>\r\n"), wire::recipient_ok("c@y.test"));
  EXPECT_EQ(c.send("DATA\r\n"), wire::go_ahead);
  EXPECT_EQ(c.send("Subject: hi\r\n\r\n..dot\r\n.\r\n"), wire::queued("id-1"));

  ASSERT_EQ(c.messages().size(), 1u);
  const message& m = c.messages()[0].msg;
  EXPECT_EQ(m.data, "Subject: hi\r\n\r\n.dot\r\n");
  EXPECT_FALSE(m.via_bdat);
  EXPECT_EQ(m.env.mail_from.address(), "a@x.test");
  ASSERT_EQ(m.env.mail_params.size(), 2u);
  EXPECT_EQ(m.env.mail_params[0].keyword, "SIZE");
  EXPECT_EQ(m.env.mail_params[0].value, "100");
  EXPECT_EQ(m.env.mail_params[1].keyword, "BODY");
  EXPECT_EQ(m.env.mail_params[1].value, "8BITMIME");
  ASSERT_EQ(m.env.recipients.size(), 2u);
  EXPECT_EQ(m.env.recipients[0].address.address(), "b@y.test");
  ASSERT_EQ(m.env.recipients[0].params.size(), 1u);
  EXPECT_EQ(m.env.recipients[0].params[0].keyword, "NOTIFY");
  EXPECT_EQ(m.env.recipients[1].address.address(), "c@y.test");
  EXPECT_EQ(m.facts.helo, "client.test");
  EXPECT_EQ(m.facts.session_id, "s1");
  EXPECT_EQ(m.received, t0);
  EXPECT_TRUE(c.logged(direction::event, "message of 21 octets, 2 recipient(s)"));

  // The transaction is over: a new one needs MAIL again.
  EXPECT_EQ(c.send("RCPT TO:<d@y.test>\r\n"), wire::need_mail_before_rcpt);
}

TEST(server_session, null_sender_is_accepted) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<>\r\n"), wire::sender_ok(""));
}

TEST(server_session, failed_store_gives_451_and_ends_the_transaction) {
  conversation c;
  c.open_transaction();
  c.fail_next_store();
  EXPECT_EQ(c.send("DATA\r\n.\r\n"),
            std::string(wire::go_ahead) +
                "451 4.3.0 Requested action aborted: local error in storing the message\r\n");
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_mail);
}

TEST(server_session, mail_before_helo_is_a_sequencing_error) {
  conversation c;
  // Before EHLO the client has not seen ENHANCEDSTATUSCODES, so 5.5.1 is not sent.
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::need_helo);
}

TEST(server_session, sequencing_errors_inside_a_session) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("RCPT TO:<b@y.test>\r\n"), wire::need_mail_before_rcpt);
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_mail);
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::nested_mail);
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_rcpt);
  EXPECT_EQ(c.send("AUTH PLAIN\r\n"), "503 5.5.1 AUTH not allowed during a transaction\r\n");
  EXPECT_TRUE(c.messages().empty());
}

TEST(server_session, rset_clears_the_transaction) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("RSET\r\n"), wire::ok);
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_mail);
  EXPECT_EQ(c.send("MAIL FROM:<n@x.test>\r\n"), wire::sender_ok("n@x.test"));
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_rcpt) << "recipients from before RSET are gone";
}

TEST(server_session, ehlo_again_resets_the_transaction) {
  conversation c;
  c.open_transaction();
  c.ehlo();
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_mail);
}

TEST(server_session, syntax_errors) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL TO:<a@x.test>\r\n"),
            "501 5.5.4 Syntax error: expected MAIL FROM:<address>\r\n");
  EXPECT_EQ(c.send("MAIL FROM:a@x.test\r\n"), "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> =x\r\n"),
            "501 5.5.4 Malformed parameter: malformed ESMTP parameter\r\n");
  EXPECT_EQ(c.send("DATA now\r\n"), "501 5.5.4 Syntax error: no arguments allowed\r\n");
  EXPECT_EQ(c.send("EHLO\r\n"), "501 5.5.4 Syntax error: domain or address literal required\r\n");
  EXPECT_EQ(c.send("STARTTLS now\r\n"), "501 5.5.4 Syntax error: no arguments allowed\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<>\r\n"), "501 5.1.3 Bad recipient address syntax\r\n");
  EXPECT_EQ(c.send("RCPT TO:<no at sign>\r\n"), "501 5.1.3 Bad recipient address syntax\r\n");
  // Over a length limit is not bad syntax: the reply says which limit.
  EXPECT_EQ(c.send("RCPT TO:<" + std::string(65, 'l') + "@x.test>\r\n"),
            "501 5.1.3 Bad recipient address: local part too long (limit 64 octets)\r\n");
  EXPECT_EQ(c.send("RCPT FROM:<b@y.test>\r\n"),
            "501 5.5.4 Syntax error: expected RCPT TO:<address>\r\n");
  EXPECT_EQ(codes(c.send("\r\n")), strings{"500 5.5.2"});
}

TEST(server_session, unknown_and_unimplemented_commands) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("FOO bar\r\n"), wire::unrecognized);
  EXPECT_EQ(c.send("LHLO client.test\r\n"), wire::unrecognized) << "LHLO is for LMTP only";
  EXPECT_EQ(c.send("EXPN list\r\n"), "502 5.5.1 EXPN not implemented\r\n");
  EXPECT_EQ(codes(c.send("VRFY user\r\n")), strings{"252 2.5.0"});
  EXPECT_EQ(codes(c.send("HELP\r\n")), strings{"214 2.0.0"});
  EXPECT_EQ(c.send("noop\r\n"), wire::ok) << "verbs are case-insensitive";
  // An empty line names no command: 500, as for one not recognized.
  EXPECT_EQ(c.send("\r\n"), "500 5.5.2 Syntax error: empty command\r\n");
}

// RFC 5321 4.1.1.1: EHLO and HELO name a domain or an address literal. Anything else is taken,
// as real servers take it, and noted.
TEST(server_session, a_greeting_name_that_is_no_domain_is_noted) {
  for (const std::string name : {"client.example", "[127.0.0.1]", "[IPv6:::1]", "bücher.example"}) {
    conversation c;
    EXPECT_EQ(c.send("EHLO " + name + "\r\n").substr(0, 4), "250-") << name;
    EXPECT_FALSE(c.logged(direction::event, "anomaly: helo_syntax")) << name;
  }
  for (const std::string name : {"a b", "-bad-", "a..b", "!!!", "[1.2.3]"}) {
    conversation c;
    EXPECT_EQ(c.send("HELO " + name + "\r\n").substr(0, 4), "250 ") << name;
    EXPECT_TRUE(c.logged(direction::event, "anomaly: helo_syntax: '" + name +
                                               "' is neither a domain nor an address literal"))
        << name;
  }
}

TEST(server_session, help_lists_only_what_the_session_offers) {
  conversation all;
  all.ehlo();
  EXPECT_EQ(all.send("HELP\r\n"),
            "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS "
            "AUTH\r\n");
  conversation hidden(without({extension::chunking, extension::starttls, extension::auth}));
  hidden.ehlo();
  EXPECT_EQ(hidden.send("HELP\r\n"),
            "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
  // After HELO no extension is offered: BDAT, STARTTLS and AUTH would get 503.
  conversation helo;
  helo.send("HELO client.test\r\n");
  EXPECT_EQ(helo.send("HELP\r\n"),
            "214 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
}

TEST(server_session, quit_says_221_and_closes) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("QUIT\r\nNOOP\r\n"), wire::bye);
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(c.session().closed());
  EXPECT_EQ(c.unread(), "NOOP\r\n") << "nothing after QUIT is read";
}

TEST(server_session, twenty_errors_in_a_row_close_the_connection) {
  conversation c;
  c.ehlo();
  std::string burst;
  for (int i = 0; i < 25; ++i)
    burst += "FOO\r\n";
  std::string out = c.send(burst);
  strings expected(20, "500 5.5.1");
  expected.push_back("421 4.7.0");
  EXPECT_EQ(codes(out), expected);
  EXPECT_TRUE(out.ends_with(wire::too_many_errors));
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(c.session().closed());
}

TEST(server_session, successful_commands_reset_the_error_count) {
  server_options o;
  o.max_errors = 3;
  conversation c(o);
  c.ehlo();
  EXPECT_EQ(codes(c.send("FOO\r\nFOO\r\nMAIL FROM:<a@x.test>\r\nFOO\r\nFOO\r\n")),
            (strings{"500 5.5.1", "500 5.5.1", "250 2.1.0", "500 5.5.1", "500 5.5.1"}));
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(codes(c.send("FOO\r\n")), (strings{"500 5.5.1", "421 4.7.0"}));
  EXPECT_TRUE(c.closed());
}

TEST(server_session, endings_decided_by_the_driver_say_421_and_close) {
  {
    conversation c(server_options{}, /*start=*/false);
    EXPECT_EQ(c.reject_busy(),
              "421 4.7.0 smtpfault.test Too many connections, try again later\r\n");
    EXPECT_TRUE(c.closed());
  }
  {
    conversation c;
    EXPECT_EQ(c.idle_timeout(), "421 4.4.2 smtpfault.test Idle timeout, closing connection\r\n")
        << "the enhanced code is sent even before EHLO";
    EXPECT_TRUE(c.closed());
  }
  {
    conversation c;
    c.open_transaction();
    EXPECT_EQ(c.shutdown(),
              "421 4.3.2 smtpfault.test Service shutting down, closing connection\r\n");
    EXPECT_TRUE(c.closed());
    EXPECT_TRUE(c.messages().empty());
  }
}

TEST(server_session, ending_after_close_says_nothing_more) {
  conversation c;
  c.send("QUIT\r\n");
  EXPECT_EQ(c.idle_timeout(), "");
  EXPECT_EQ(c.shutdown(), "");
}

TEST(server_session, pipelined_commands_are_answered_in_order) {
  conversation c;
  std::string out = c.send(
      "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<>\r\n"
      "RCPT TO:<c@y.test>\r\nDATA\r\nhello\r\n.\r\nNOOP\r\nMAIL FROM:<d@x.test>\r\nRSET\r\n"
      "QUIT\r\n");
  EXPECT_EQ(codes(out), (strings{"250", "250 2.1.0", "250 2.1.5", "501 5.1.3", "250 2.1.5", "354",
                                 "250 2.0.0", "250 2.0.0", "250 2.1.0", "250 2.0.0", "221 2.0.0"}));
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.data, "hello\r\n");
  EXPECT_TRUE(c.closed());
}

// A driver serving many sessions on one thread takes a flood of pipelined lines in turns: the
// session stops after the lines it was given and goes on from there with the rest.
TEST(server_session, receive_stops_after_its_line_budget) {
  conversation c;
  c.ehlo();
  const std::string input = "NOOP\r\nNOOP x\r\nRSET\r\nNOOP\r\n";
  auto& s = c.session();
  const auto lines_before = s.lines_taken();
  std::size_t used = s.receive(input, t0, 2);
  EXPECT_EQ(used, std::string("NOOP\r\nNOOP x\r\n").size());
  EXPECT_EQ(s.lines_taken() - lines_before, 2u);
  EXPECT_EQ(codes(c.send("")), (strings{"250 2.0.0", "250 2.0.0"}));
  used += s.receive(std::string_view(input).substr(used), t0, 2);
  EXPECT_EQ(used, input.size());
  EXPECT_EQ(codes(c.send("")), (strings{"250 2.0.0", "250 2.0.0"}));
  // A message's text does not count: DATA is the one line taken before the delivery stops it.
  c.open_transaction();
  const std::string message = "DATA\r\nline 1\r\nline 2\r\nline 3\r\n.\r\nNOOP\r\n";
  used = s.receive(message, t0, 2);
  EXPECT_EQ(used, message.size() - std::string("NOOP\r\n").size());
  EXPECT_EQ(codes(c.send("")), (strings{"354", "250 2.0.0"}));
}

TEST(server_session, bare_lf_command_line_is_noted_and_accepted) {
  conversation c;
  EXPECT_EQ(c.send("EHLO client.test\n"), wire::ehlo_all);
  EXPECT_TRUE(
      c.logged(direction::event, "anomaly: bare_lf: the command line ended with a bare LF"));
}

TEST(server_session, bare_cr_and_nul_in_a_command_line_are_noted_and_kept) {
  conversation c;
  EXPECT_EQ(c.send(std::string("NOOP a\0b\rc\r\n", 13)), "250 Ok\r\n");
  // In the order they occur in the line, whichever comes first.
  const auto anomalies = [](const conversation& x) {
    strings found;
    for (const auto& e : x.log().entries())
      if (e.dir == direction::event && e.text.starts_with("anomaly:")) found.push_back(e.text);
    return found;
  };
  EXPECT_EQ(anomalies(c), (strings{"anomaly: nul in the command line at offset 6",
                                   "anomaly: bare_cr in the command line at offset 8"}));
  conversation d;
  EXPECT_EQ(d.send(std::string("NOOP a\rb\0c\r\n", 13)), "250 Ok\r\n");
  EXPECT_EQ(anomalies(d), (strings{"anomaly: bare_cr in the command line at offset 6",
                                   "anomaly: nul in the command line at offset 8"}));
}

TEST(server_session, transcript_records_both_sides) {
  conversation c;
  c.send("EHLO client.test\r\nQUIT\r\n");
  std::vector<std::pair<direction, std::string>> got;
  for (const auto& e : c.log().entries())
    got.emplace_back(e.dir, e.text);
  ASSERT_GE(got.size(), 4u);
  EXPECT_EQ(got[0], (std::pair{direction::server, "220 smtpfault.test ESMTP smtpfault ready"s}));
  EXPECT_EQ(got[1], (std::pair{direction::client, "EHLO client.test"s}));
  EXPECT_EQ(got[2], (std::pair{direction::server, "250-smtpfault.test greets client.test"s}));
  EXPECT_EQ(got.back(),
            (std::pair{direction::server, "221 2.0.0 smtpfault.test closing connection"s}));
}

// Past its cap a transcript keeps its first half and its latest entries (how a session ended is
// what one looks for), with a note where it dropped some; the count of dropped lines (which the
// API reports) must be exact, multi-line replies included.
TEST(server_session, a_full_transcript_keeps_its_start_and_its_end) {
  const std::string script =
      "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
      "hi\r\n.\r\nHELP\r\nQUIT\r\n";
  conversation whole;
  whole.send(script);
  ASSERT_EQ(whole.log().dropped(), 0u);
  const auto all = whole.log().entries();
  for (std::size_t cap : {2u, 3u, 5u, 8u, 13u}) {
    conversation capped({}, true, cap);
    EXPECT_EQ(capped.send(script), whole.output().substr(wire::greeting.size())) << cap;
    const auto kept = capped.log().entries();
    const auto dropped = capped.log().dropped();
    EXPECT_EQ(kept.size() - 1 + dropped, all.size()) << cap;  // one entry notes the gap
    const std::size_t first = cap - cap / 2;
    for (std::size_t i = 0; i < first; ++i)
      EXPECT_EQ(kept[i].text, all[i].text) << cap;
    EXPECT_EQ(kept[first].text,
              std::to_string(dropped) + " transcript entries dropped here (kept: the first " +
                  std::to_string(first) + " and the last " + std::to_string(cap / 2) + ")");
    EXPECT_EQ(kept.back().text, all.back().text) << cap;
    if (cap / 2 > 1) {
      EXPECT_EQ(kept[kept.size() - 2].text, all[all.size() - 2].text) << cap;
    }
  }
}

TEST(transcript, escape_wire_keeps_utf8_and_escapes_what_is_not) {
  EXPECT_EQ(escape_wire("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(escape_wire("a\r\nb\\c\x01"), "a\\r\\nb\\\\c\\x01");
  EXPECT_EQ(escape_wire("\xff\x80ok\xc3"), "\\xff\\x80ok\\xc3") << "no broken sequences";
  EXPECT_EQ(escape_wire("\xd8\x9c"), "\\xd8\\x9c") << "U+061C, the Arabic letter mark";
  // A C1 CSI (U+009B) and a right-to-left override (U+202E): a terminal would act on them.
  EXPECT_EQ(escape_wire("\xc2\x9b"
                        "2J \xe2\x80\xae"
                        "txt"),
            "\\xc2\\x9b"
            "2J \\xe2\\x80\\xae"
            "txt");
}

// RFC 2920: a command with more octets behind it in the same read was sent without waiting.
TEST(server_session, pipelining_is_noted_once) {
  conversation c;
  c.send("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  EXPECT_TRUE(c.logged(direction::event, "client pipelined commands"));
  conversation lockstep;
  lockstep.send("EHLO client.test\r\n");
  lockstep.send("MAIL FROM:<a@x.test>\r\n");
  EXPECT_FALSE(lockstep.logged(direction::event, "client pipelined commands"));
  // However many bursts: one note a session.
  conversation bursts;
  bursts.ehlo();
  bursts.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  bursts.send("RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<c@y.test>\r\n");
  const auto& entries = bursts.log().entries();
  EXPECT_EQ(std::count_if(entries.begin(), entries.end(),
                          [](const auto& e) { return e.text == "client pipelined commands"; }),
            1);
}

// RFC 2920 3.1: EHLO, DATA, QUIT, NOOP, ... end a group; the first one with more behind it is
// named, once a session. MAIL and RCPT do not end one.
TEST(server_session, pipelining_past_the_end_of_a_group_is_named) {
  const std::string note =
      "client pipelined commands after EHLO, which ends a group (RFC 2920 3.1)";
  conversation c;
  c.send("EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  EXPECT_TRUE(c.logged(direction::event, note));
  conversation in_groups;
  in_groups.ehlo();
  in_groups.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n");
  in_groups.send("hi\r\n.\r\n");
  in_groups.send("NOOP\r\n");
  EXPECT_TRUE(in_groups.logged(direction::event, "client pipelined commands"));
  EXPECT_FALSE(in_groups.logged(direction::event, "which ends a group"));
  in_groups.send("NOOP\r\nNOOP\r\nDATA\r\nQUIT\r\n");
  EXPECT_TRUE(in_groups.logged(
      direction::event, "client pipelined commands after NOOP, which ends a group (RFC 2920 3.1)"));
  EXPECT_FALSE(in_groups.logged(direction::event, "after DATA")) << "once a session";
}

}  // namespace
}  // namespace smtpfault::session::testing
