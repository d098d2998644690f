#include "proto/command.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace smtpfault::proto {
namespace {

using namespace std::string_literals;

const limits command_limits{};

command parsed(std::string_view line) {
  auto r = parse_command(line, command_limits);
  EXPECT_TRUE(r) << '"' << line << "\" failed: " << (r ? "" : r.error().detail);
  return r ? *r : command{};
}

command_failure refused(std::string_view line) {
  auto r = parse_command(line, command_limits);
  EXPECT_FALSE(r) << '"' << line << "\" parsed";
  return r ? command_failure{command_error::syntax, verb::unknown, "", ""} : r.error();
}

TEST(command, verbs_are_case_insensitive) {
  EXPECT_EQ(parsed("ehlo client.example").kind, verb::ehlo);
  EXPECT_EQ(parsed("EhLo client.example").kind, verb::ehlo);
  EXPECT_EQ(parsed("noop").kind, verb::noop);
  EXPECT_EQ(parsed("StartTLS").kind, verb::starttls);
  EXPECT_EQ(parsed("StartTLS").verb_text, "StartTLS");
}

TEST(command, every_verb_has_a_name) {
  for (auto [name, v] : {std::pair{"HELO", verb::helo},
                         {"EHLO", verb::ehlo},
                         {"LHLO", verb::lhlo},
                         {"MAIL", verb::mail},
                         {"RCPT", verb::rcpt},
                         {"DATA", verb::data},
                         {"BDAT", verb::bdat},
                         {"RSET", verb::rset},
                         {"NOOP", verb::noop},
                         {"QUIT", verb::quit},
                         {"VRFY", verb::vrfy},
                         {"EXPN", verb::expn},
                         {"HELP", verb::help},
                         {"STARTTLS", verb::starttls},
                         {"AUTH", verb::auth}}) {
    EXPECT_EQ(verb_name(v), name);
  }
  EXPECT_EQ(verb_name(verb::unknown), "");
}

TEST(command, helo_family_needs_an_argument) {
  EXPECT_EQ(parsed("HELO mx.example").argument, "mx.example");
  EXPECT_EQ(parsed("EHLO [192.0.2.1]").argument, "[192.0.2.1]");
  EXPECT_EQ(parsed("LHLO lmtp").kind, verb::lhlo);
  for (const char* line : {"HELO", "EHLO", "EHLO ", "LHLO   "}) {
    auto f = refused(line);
    EXPECT_EQ(f.error, command_error::syntax) << line;
    EXPECT_NE(f.kind, verb::unknown) << line;
  }
}

TEST(command, mail_from) {
  auto c = parsed("MAIL FROM:<alice@example.org>");
  EXPECT_EQ(c.kind, verb::mail);
  EXPECT_EQ(c.argument, "FROM:<alice@example.org>");
  EXPECT_EQ(c.path.local_part, "alice");
  EXPECT_EQ(c.path.domain, "example.org");
  EXPECT_TRUE(c.params.empty());
}

TEST(command, mail_from_null_sender) {
  auto c = parsed("mail from:<>");
  EXPECT_TRUE(c.path.is_null);
  EXPECT_EQ(c.path.address(), "");
}

TEST(command, mail_from_tolerates_one_space_after_colon) {
  EXPECT_EQ(parsed("MAIL FROM: <a@b.example>").path.address(), "a@b.example");
  EXPECT_EQ(refused("MAIL FROM:  <a@b.example>").error, command_error::bad_path);
}

TEST(command, mail_parameters) {
  auto c = parsed("MAIL FROM:<a@b.example> size=1000 BODY=8BITMIME SMTPUTF8 ENVID=x+2Bid RET=HDRS");
  ASSERT_EQ(c.params.size(), 5u);
  EXPECT_EQ(c.params[0].keyword, "SIZE");
  EXPECT_EQ(c.params[0].value, "1000");
  EXPECT_EQ(c.params[2].keyword, "SMTPUTF8");
  EXPECT_FALSE(c.params[2].value.has_value());
  ASSERT_NE(c.find_param("BODY"), nullptr);
  EXPECT_EQ(c.find_param("BODY")->value, "8BITMIME");
  EXPECT_EQ(c.find_param("ENVID")->value, "x+2Bid");
  EXPECT_EQ(c.find_param("AUTH"), nullptr);
}

TEST(command, parameter_values_may_carry_utf8) {
  auto c = parsed("MAIL FROM:<a@b.example> ENVID=caf\xc3\xa9");
  ASSERT_EQ(c.params.size(), 1u);
  EXPECT_EQ(c.params[0].value, "caf\xc3\xa9");
}

TEST(command, malformed_parameters) {
  for (const char* line : {"MAIL FROM:<a@b.example> SIZE=", "MAIL FROM:<a@b.example> =1",
                           "MAIL FROM:<a@b.example> -SIZE=1", "MAIL FROM:<a@b.example> SI_ZE=1",
                           "MAIL FROM:<a@b.example> SIZE=1=2", "MAIL FROM:<a@b.example> SIZE=\x7f",
                           "MAIL FROM:<a@b.example> SIZE=a\tb", "RCPT TO:<a@b.example> NOTIFY="}) {
    auto f = refused(line);
    EXPECT_EQ(f.error, command_error::bad_parameter) << line;
  }
}

TEST(command, mail_syntax_errors) {
  EXPECT_EQ(refused("MAIL").error, command_error::syntax);
  EXPECT_EQ(refused("MAIL TO:<a@b.example>").error, command_error::syntax);
  EXPECT_EQ(refused("MAIL FROM:").error, command_error::syntax);
  EXPECT_EQ(refused("MAIL FROM<a@b.example>").error, command_error::syntax);
}

TEST(command, mail_bad_paths_say_which_verb) {
  for (const char* line :
       {"MAIL FROM:a@b.example", "MAIL FROM:<a@b.example", "MAIL FROM:<a@b.example>SIZE=1",
        "MAIL FROM:<a b@c.example>", "MAIL FROM:<@b.example>"}) {
    auto f = refused(line);
    EXPECT_EQ(f.error, command_error::bad_path) << line;
    EXPECT_EQ(f.kind, verb::mail) << line;  // server picks 501 5.1.7
  }
}

TEST(command, rcpt_to) {
  auto c = parsed("RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.net");
  EXPECT_EQ(c.kind, verb::rcpt);
  EXPECT_EQ(c.path.address(), "bob@example.net");
  EXPECT_EQ(c.find_param("notify")->value, "SUCCESS,FAILURE");
}

// RFC 5321 4.1.1.3: "<Postmaster>" without a domain must be accepted as a recipient.
TEST(command, rcpt_to_postmaster) {
  auto c = parsed("RCPT TO:<Postmaster>");
  EXPECT_EQ(c.path.domain, "");
  EXPECT_EQ(c.path.address(), "Postmaster");
  EXPECT_EQ(refused("MAIL FROM:<Postmaster>").error, command_error::bad_path);
}

TEST(command, rcpt_null_path_is_rejected) {
  auto f = refused("RCPT TO:<>");
  EXPECT_EQ(f.error, command_error::bad_path);
  EXPECT_EQ(f.kind, verb::rcpt);  // server picks 501 5.1.3
}

TEST(command, quoted_local_part_may_contain_gt_and_spaces) {
  auto c = parsed("RCPT TO:<\"odd> name\"@example.net> NOTIFY=NEVER");
  EXPECT_EQ(c.path.local_part, "\"odd> name\"");
  EXPECT_EQ(c.params.size(), 1u);
}

TEST(command, no_argument_verbs) {
  for (const char* line : {"DATA", "RSET", "QUIT", "STARTTLS", "data"})
    parsed(line);
  for (const char* line : {"DATA x", "RSET ", "QUIT  ", "STARTTLS now", "DATA "}) {
    auto f = refused(line);
    EXPECT_EQ(f.error, command_error::syntax) << line;
    EXPECT_NE(f.kind, verb::unknown) << line;
  }
}

TEST(command, optional_argument_verbs) {
  EXPECT_EQ(parsed("NOOP").argument, "");
  EXPECT_EQ(parsed("NOOP anything at all").argument, "anything at all");
  EXPECT_EQ(parsed("HELP").kind, verb::help);
  EXPECT_EQ(parsed("HELP MAIL").argument, "MAIL");
}

TEST(command, vrfy_expn_auth_need_an_argument) {
  EXPECT_EQ(parsed("VRFY alice").argument, "alice");
  EXPECT_EQ(parsed("EXPN staff").argument, "staff");
  EXPECT_EQ(parsed("AUTH PLAIN AGFsaWNlAHNlY3JldA==").argument, "PLAIN AGFsaWNlAHNlY3JldA==");
  for (const char* line : {"VRFY", "EXPN", "AUTH", "AUTH ", "VRFY "}) {
    EXPECT_EQ(refused(line).error, command_error::syntax) << line;
  }
}

TEST(command, bdat_argument_is_raw) {
  EXPECT_EQ(parsed("BDAT 100 LAST").argument, "100 LAST");
  EXPECT_EQ(parsed("BDAT junk").argument, "junk");
}

TEST(command, unknown_verbs) {
  for (const char* line : {"XYZZY", "MAILFROM:<a@b>", "HELO\tx", " MAIL FROM:<>", "EHL"}) {
    auto f = refused(line);
    EXPECT_EQ(f.error, command_error::unknown_verb) << line;
    EXPECT_EQ(f.kind, verb::unknown) << line;
  }
  EXPECT_EQ(refused("XYZZY plugh").verb_text, "XYZZY");
  EXPECT_EQ(refused("GET / HTTP/1.1").verb_text, "GET");
}

TEST(command, empty_line_is_a_syntax_error) {
  auto f = refused("");
  EXPECT_EQ(f.error, command_error::syntax);
  EXPECT_EQ(f.kind, verb::unknown);
}

TEST(command, binary_garbage_never_crashes) {
  EXPECT_EQ(refused("\0\0\0"s).error, command_error::unknown_verb);
  EXPECT_EQ(refused("MAIL FROM:<a\0b@c.example>"s).error, command_error::bad_path);
  EXPECT_EQ(refused("\xff\xfe MAIL").error, command_error::unknown_verb);
  std::mt19937 rng(7);
  const std::string seeds[] = {"MAIL FROM:<", "RCPT TO:<", "EHLO ", "AUTH ", ""};
  for (int i = 0; i < 5000; ++i) {
    std::string line = seeds[i % 5];
    std::size_t len = rng() % 24;
    for (std::size_t k = 0; k < len; ++k)
      line += static_cast<char>(rng() % 256);
    (void)parse_command(line, command_limits);
  }
}

// RFC 5321 4.5.3.1.1 and 4.1.2 limits reach the command through parse_path.
TEST(command, path_limits_map_to_bad_path) {
  auto f = refused("MAIL FROM:<" + std::string(65, 'a') + "@example.org>");
  EXPECT_EQ(f.error, command_error::bad_path);
  EXPECT_EQ(f.detail, describe(path_error::local_too_long));
}

}  // namespace
}  // namespace smtpfault::proto
