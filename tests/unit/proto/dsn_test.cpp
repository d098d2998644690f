// RFC 3461, what a client asks for: "NOTIFY=NEVER / 1#( SUCCESS / FAILURE / DELAY )" on RCPT
// (4.1), "RET=FULL / HDRS" and "ENVID=xtext" on MAIL (4.3, 4.4), where xtext writes '+', '='
// and the octets outside 33..126 as "+" and two upper-case hex digits (4).
#include "proto/dsn.hpp"

#include <gtest/gtest.h>

namespace smtpfault::proto {
namespace {

TEST(xtext_encode, plus_equals_and_octets_outside_33_to_126_become_plus_hex) {
  EXPECT_EQ(xtext_encode("id+1 x"), "id+2B1+20x");
  EXPECT_EQ(xtext_encode("a=b"), "a+3Db");
  EXPECT_EQ(xtext_encode(std::string_view("\x00\x1f\x7f\x80\xff", 5)), "+00+1F+7F+80+FF");
  // The ends of the range go as they are: '!' is 33, '~' is 126.
  EXPECT_EQ(xtext_encode("!~<>\"\\"), "!~<>\"\\");
  EXPECT_EQ(xtext_encode(""), "");
}

TEST(dsn_parameters, ret_and_envid_go_on_mail_notify_on_rcpt) {
  const dsn_request r{.notify = "SUCCESS,FAILURE", .ret = "HDRS", .envid = "id+1 x"};
  EXPECT_EQ(dsn_mail_parameters(r), " RET=HDRS ENVID=id+2B1+20x");
  EXPECT_EQ(dsn_rcpt_parameters(r), " NOTIFY=SUCCESS,FAILURE");
  EXPECT_EQ(dsn_keywords(r), "NOTIFY, RET and ENVID");
}

TEST(dsn_parameters, what_was_not_asked_for_is_left_out) {
  const dsn_request none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(dsn_mail_parameters(none), "");
  EXPECT_EQ(dsn_rcpt_parameters(none), "");
  const dsn_request notify{.notify = "NEVER"};
  EXPECT_FALSE(notify.empty());
  EXPECT_EQ(dsn_mail_parameters(notify), "");
  EXPECT_EQ(dsn_rcpt_parameters(notify), " NOTIFY=NEVER");
  EXPECT_EQ(dsn_keywords(notify), "NOTIFY");
  const dsn_request envid{.envid = "e"};
  EXPECT_EQ(dsn_mail_parameters(envid), " ENVID=e");
  EXPECT_EQ(dsn_rcpt_parameters(envid), "");
  EXPECT_EQ(dsn_keywords(dsn_request{.ret = "FULL", .envid = "e"}), "RET and ENVID");
}

TEST(notify_problem, never_alone_or_each_condition_once_in_any_case) {
  for (const char* ok : {"NEVER", "never", "SUCCESS", "success,Failure", "DELAY,FAILURE,SUCCESS"})
    EXPECT_EQ(notify_problem(ok), "") << ok;
  EXPECT_EQ(notify_problem("NEVER,SUCCESS"),
            "NEVER stands alone, with no SUCCESS, FAILURE or DELAY");
  EXPECT_EQ(notify_problem("DELAY,never"), "NEVER stands alone, with no SUCCESS, FAILURE or DELAY");
  EXPECT_EQ(notify_problem("BOGUS"), "'BOGUS' is none of NEVER, SUCCESS, FAILURE and DELAY");
  EXPECT_EQ(notify_problem("success,Success"), "SUCCESS given twice");
  EXPECT_EQ(notify_problem(""), "empty; NEVER, or a list of SUCCESS, FAILURE and DELAY");
  EXPECT_EQ(notify_problem("SUCCESS,"), "an empty item in the list");
  EXPECT_EQ(notify_problem(",DELAY"), "an empty item in the list");
  // A space is no separator: the item is quoted as it came.
  EXPECT_EQ(notify_problem("SUCCESS, FAILURE"),
            "' FAILURE' is none of NEVER, SUCCESS, FAILURE and DELAY");
}

TEST(envid_problem, printable_ascii_of_at_most_100_characters_as_sent) {
  EXPECT_EQ(envid_problem("id+1 x"), "");
  EXPECT_EQ(envid_problem(std::string(100, 'a')), "");
  EXPECT_EQ(envid_problem(std::string(101, 'a')),
            "101 characters as sent ('+', '=' and a space take three each); RFC 3461 4.4 allows "
            "100");
  // 34 spaces are 102 characters as xtext.
  EXPECT_EQ(envid_problem(std::string(34, ' ')).substr(0, 24), "102 characters as sent (");
  EXPECT_EQ(envid_problem(std::string(33, '+')), "");
  EXPECT_EQ(envid_problem(""), "empty; an envelope identifier needs some text");
  EXPECT_NE(envid_problem("a\tb").find("only printable US-ASCII"), std::string::npos);
  EXPECT_NE(envid_problem("caf\xc3\xa9").find("only printable US-ASCII"), std::string::npos);
}

}  // namespace
}  // namespace smtpfault::proto
