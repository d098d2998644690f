// server_session: the limits of a command line, SIZE, the ESMTP parameters of MAIL and RCPT,
// and the recipient limit.
#include "session/server_session.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "conversation.hpp"

namespace smtpfault::session::testing {
namespace {

using strings = std::vector<std::string>;
// RFC 5321 section 4.5.3.1.4: 512 octets including the CRLF.
TEST(server_session, command_line_limit_is_512_octets) {
  conversation c;
  c.ehlo();
  const std::string at_limit = "NOOP " + std::string(512 - 5 - 2, 'x') + "\r\n";
  ASSERT_EQ(at_limit.size(), 512u);
  EXPECT_EQ(c.send(at_limit), wire::ok);
  const std::string over = "NOOP " + std::string(512 - 5 - 1, 'x') + "\r\n";
  EXPECT_EQ(c.send(over), wire::line_too_long);
  EXPECT_TRUE(c.logged(direction::client, "<over-long line discarded>"));
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok) << "the session is back in sync";
  // A bare LF is one octet of the 512.
  EXPECT_EQ(c.send("NOOP " + std::string(512 - 5 - 1, 'x') + "\n"), wire::ok);
  EXPECT_EQ(c.send("NOOP " + std::string(512 - 5, 'x') + "\n"), wire::line_too_long);
}

// RFC 5321 4.5.3.1.4: extensions raise the limit for MAIL (SIZE +26, DSN +100, AUTH= +500)
// and RCPT (DSN +500), so a long ORCPT or AUTH= is not refused as a long line.
TEST(server_session, mail_and_rcpt_lines_get_room_for_their_parameters) {
  conversation c;
  c.ehlo();
  const auto padded = [](std::string head, std::size_t total) {
    return head + std::string(total - head.size() - 2, 'x') + "\r\n";
  };
  // Past 512 octets, the line is judged by its parameters, not refused for its length.
  EXPECT_EQ(c.send(padded("MAIL FROM:<a@x.test> SIZE=1 ENVID=", 512 + 126)),
            "501 5.5.4 Bad ENVID value\r\n");
  EXPECT_EQ(c.send(padded("MAIL FROM:<a@x.test> AUTH=", 1138)), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send(padded("RCPT TO:<b@y.test> ORCPT=rfc822;", 1012)).substr(0, 4), "250 ");
  EXPECT_EQ(c.send(padded("RCPT TO:<b@y.test> ORCPT=rfc822;", 1013)), wire::line_too_long);
  EXPECT_EQ(c.send(padded("NOOP ", 513)), wire::line_too_long);
  EXPECT_EQ(c.send("RSET\r\n"), wire::ok);
  EXPECT_EQ(c.send(padded("MAIL FROM:<a@x.test> AUTH=", 1139)), wire::line_too_long);
}

TEST(server_session, endless_line_is_discarded_as_it_arrives) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("NOOP " + std::string(20000, 'x')), "");
  EXPECT_LT(c.unread().size(), 12288u) << "memory stays bounded";
  EXPECT_EQ(c.send(std::string(20000, 'x') + "\r\nNOOP\r\n"),
            std::string(wire::line_too_long) + std::string(wire::ok));
}

// RFC 4954 section 4: AUTH lines may be up to 12288 octets.
TEST(server_session, auth_line_limit_is_12288_octets) {
  conversation c;
  c.ehlo();
  std::string prefix = "AUTH PLAIN ";
  std::string ok_line = prefix + std::string(12288 - prefix.size() - 2, 'A') + "\r\n";
  ASSERT_EQ(ok_line.size(), 12288u);
  EXPECT_EQ(codes(c.send(ok_line)), strings{"501 5.5.2"}) << "read in full, judged on content";
  std::string long_line = prefix + std::string(12288 - prefix.size() - 1, 'A') + "\r\n";
  EXPECT_EQ(c.send(long_line), wire::auth_line_too_long);
  EXPECT_EQ(c.send_bytewise(long_line), wire::auth_line_too_long);
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok);
}

TEST(server_session, size_parameter_over_the_limit_is_refused) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=10485761\r\n"), wire::size_exceeded);
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=big\r\n"), "501 5.5.4 Bad SIZE value\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=10485760\r\n"), wire::sender_ok("a@x.test"));
}

// RFC 1870: size-value ::= 1*20DIGIT. Twenty digits are a size (too big), leading zeros are
// nothing; twenty-one digits are a syntax error.
TEST(server_session, size_values_of_twenty_digits) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=99999999999999999999\r\n"), wire::size_exceeded);
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=00000000000000000001\r\n"),
            wire::sender_ok("a@x.test"));
  c.send("RSET\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=000000000000000000001\r\n"),
            "501 5.5.4 Bad SIZE value\r\n");
}

// RFC 1869 4.5, RFC 3461 4: each parameter once; NOTIFY names each condition once.
TEST(server_session, a_parameter_given_twice_is_refused) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=1 SIZE=2\r\n"),
            "501 5.5.4 Parameter SIZE given twice\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> RET=FULL ret=HDRS\r\n"),
            "501 5.5.4 Parameter RET given twice\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=SUCCESS,SUCCESS\r\n"),
            "501 5.5.4 Bad NOTIFY value\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY\r\n"), "501 5.5.4 Bad NOTIFY value\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=\r\n").substr(0, 4), "501 ");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=NEVER NOTIFY=NEVER\r\n"),
            "501 5.5.4 Parameter NOTIFY given twice\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=DELAY,FAILURE,SUCCESS\r\n").substr(0, 4), "250 ");
}

TEST(server_session, unsupported_parameters_are_refused) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> FOO=1\r\n"), "555 5.5.4 Unsupported parameter FOO\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> BODY=BINARYMIME\r\n"),
            "555 5.5.4 Unsupported BODY type BINARYMIME\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> RET=ALL\r\n"), "501 5.5.4 Bad RET value\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> RET=HDRS ENVID=e1 AUTH=<>\r\n"),
            wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> FOO=1\r\n"), "555 5.5.4 Unsupported parameter FOO\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=SOMETIMES\r\n"), "501 5.5.4 Bad NOTIFY value\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> ORCPT=plain\r\n"), "501 5.5.4 Bad ORCPT value\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=NEVER ORCPT=rfc822;b@y.test\r\n"),
            wire::recipient_ok("b@y.test"));
}

// A keyword or value the client sent comes back shortened: MAIL and RCPT lines may be longer
// than 512 octets with their parameters, but a reply line may not (RFC 5321 4.5.3.1.5).
TEST(server_session, replies_that_show_a_long_parameter_stay_within_512_octets) {
  const std::string keyword(1000, 'K');
  const std::string shown = keyword.substr(0, 61) + "...";
  conversation c;
  c.send("HELO client.test\r\n");
  EXPECT_EQ(
      c.send("MAIL FROM:<a@x.test> " + keyword + "=1\r\n"),
      "555 Parameter " + shown + " not recognized after HELO: ESMTP parameters need EHLO\r\n");
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> " + keyword + "\r\n"),
            "555 5.5.4 Unsupported parameter " + shown + "\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> BODY=" + keyword + "\r\n"),
            "555 5.5.4 Unsupported BODY type " + shown + "\r\n");
  const std::string twice(400, 'T');
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> " + twice + " " + twice + "\r\n"),
            "501 5.5.4 Parameter " + twice.substr(0, 61) + "... given twice\r\n");
}

// RFC 3461 4: ENVID, ORCPT's address and AUTH= are xtext; a mailer that does not encode "+" or
// "=" hands the DSN its own reports would carry a different value.
TEST(server_session, xtext_parameters_are_checked) {
  conversation c;
  c.ehlo();
  const std::string bad_plus =
      "(xtext, RFC 3461 4: \"+\" not followed by two upper-case hex digits)";
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> ENVID=a+b\r\n"),
            "501 5.5.4 Bad ENVID value " + bad_plus + "\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> ENVID=a+2b\r\n"),
            "501 5.5.4 Bad ENVID value " + bad_plus + "\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> ENVID=a+2\r\n"),
            "501 5.5.4 Bad ENVID value " + bad_plus + "\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> AUTH=a+b@x.test\r\n"),
            "501 5.5.4 Bad AUTH value " + bad_plus + "\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> ENVID=id+2B1+3D AUTH=a+2Bb@x.test\r\n"),
            wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> ORCPT=rfc822;\r\n"), "501 5.5.4 Bad ORCPT value\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> ORCPT=;b@y.test\r\n"), "501 5.5.4 Bad ORCPT value\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> ORCPT=rfc822;b+y@y.test\r\n"),
            "501 5.5.4 Bad ORCPT value " + bad_plus + "\r\n");
  EXPECT_EQ(c.send("RCPT TO:<b+y@y.test> ORCPT=rfc822;b+2By@y.test\r\n"),
            wire::recipient_ok("b+y@y.test"));
  // 8-bit: not xtext, but for ORCPT's "utf-8" type (RFC 6533 3).
  const std::string eight_bit = "(xtext, RFC 3461 4: an octet over 126; 8-bit text is sent as +XX)";
  EXPECT_EQ(c.send("RCPT TO:<c@y.test> ORCPT=rfc822;\xC3\xA9@y.test\r\n"),
            "501 5.5.4 Bad ORCPT value " + eight_bit + "\r\n");
  EXPECT_EQ(c.send("RCPT TO:<c@y.test> ORCPT=utf-8;\xC3\xA9@y.test\r\n"),
            wire::recipient_ok("c@y.test"));
  EXPECT_EQ(c.send("RSET\r\n"), wire::ok);
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> ENVID=\xE9\xFF\r\n"),
            "501 5.5.4 Bad ENVID value " + eight_bit + "\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> AUTH=\xC3\xA9@x.test\r\n"),
            "501 5.5.4 Bad AUTH value " + eight_bit + "\r\n");
}

TEST(server_session, parameters_of_hidden_extensions_are_refused) {
  conversation c(without({extension::size, extension::dsn, extension::smtputf8}));
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SIZE=1\r\n"), "555 5.5.4 Unsupported parameter SIZE\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test> SMTPUTF8\r\n"),
            "555 5.5.4 Unsupported parameter SMTPUTF8\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<b@y.test> NOTIFY=NEVER\r\n"),
            "555 5.5.4 Unsupported parameter NOTIFY\r\n");
}

// RFC 6531 section 3.4: non-ASCII addresses only in a transaction that announced SMTPUTF8.
TEST(server_session, non_ascii_address_needs_smtputf8) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("MAIL FROM:<j\xC3\xBCrgen@x.test>\r\n"),
            "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<j\xC3\xBCrgen@y.test>\r\n"),
            "553 5.6.7 Non-ASCII address requires SMTPUTF8 on MAIL\r\n");
  EXPECT_EQ(c.send("RSET\r\n"), wire::ok);
  EXPECT_EQ(c.send("MAIL FROM:<j\xC3\xBCrgen@x.test> SMTPUTF8\r\n"),
            wire::sender_ok("j\xC3\xBCrgen@x.test"));
  EXPECT_EQ(c.send("RCPT TO:<j\xC3\xBCrgen@y.test>\r\n"),
            wire::recipient_ok("j\xC3\xBCrgen@y.test"));
  EXPECT_EQ(c.send("DATA\r\n.\r\n"), std::string(wire::go_ahead) + wire::queued("id-1"));
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_TRUE(c.messages()[0].msg.env.smtputf8);
}

TEST(server_session, recipient_limit_gives_452) {
  server_options o;
  o.limits.max_recipients = 2;
  conversation c(o);
  c.open_transaction("a@x.test", {"b1@y.test", "b2@y.test"});
  EXPECT_EQ(c.send("RCPT TO:<b3@y.test>\r\n"), wire::too_many_rcpts);
  EXPECT_EQ(c.send("DATA\r\n.\r\n"), std::string(wire::go_ahead) + wire::queued("id-1"));
  EXPECT_EQ(c.messages()[0].msg.env.recipients.size(), 2u);
}

}  // namespace
}  // namespace smtpfault::session::testing
