// server_session: AUTH (RFC 4954) with PLAIN, LOGIN, CRAM-MD5 and XOAUTH2, and STARTTLS
// (RFC 3207) including the reset of everything learned before the handshake.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "conversation.hpp"
#include "proto/sasl.hpp"
#include "session/auth_policy.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session::testing {
namespace {

using proto::base64_encode;
using strings = std::vector<std::string>;

const std::string login_user_prompt = "334 VXNlcm5hbWU6\r\n";  // "Username:"
const std::string login_pass_prompt = "334 UGFzc3dvcmQ6\r\n";  // "Password:"

// A conversation whose server knows one user, alice with password "secret".
class auth_test : public ::testing::Test {
 protected:
  auth_test() { policy_.users["alice"] = "secret"; }

  server_options options() const {
    server_options o;
    o.auth = &policy_;
    return o;
  }

  auth_policy policy_;
};

std::string plain(std::string_view user, std::string_view password) {
  return base64_encode("\0"s + std::string(user) + "\0"s + std::string(password));
}

TEST_F(auth_test, plain_with_initial_response) {
  conversation c(options());
  c.ehlo();
  EXPECT_EQ(c.send("AUTH PLAIN " + plain("alice", "secret") + "\r\n"), wire::auth_ok);
  EXPECT_EQ(c.session().facts().auth_user, "alice");
  EXPECT_EQ(c.session().facts().auth_mechanism, "PLAIN");
  EXPECT_TRUE(c.logged(direction::client, "AUTH PLAIN ****"));
  EXPECT_FALSE(c.logged(direction::client, plain("alice", "secret"))) << "secrets stay out";
  EXPECT_TRUE(c.logged(direction::event, "AUTH PLAIN succeeded for alice"));
  EXPECT_EQ(c.send("EHLO client.test\r\n").find("AUTH"), std::string::npos)
      << "AUTH is not offered again once authenticated";
  EXPECT_EQ(c.send("AUTH PLAIN " + plain("alice", "secret") + "\r\n"),
            "503 5.5.1 Already authenticated\r\n");
}

// RFC 4954 4 has one SP between the parts; Postfix and Exim take more (emailjs 5 sends
// "AUTH  CRAM-MD5"), and so does this server, noting it. The mechanism stays readable in the
// transcript, the secret does not.
TEST_F(auth_test, extra_spaces_between_the_parts_are_taken_and_noted) {
  conversation c(options());
  c.ehlo();
  EXPECT_EQ(c.send("AUTH  PLAIN  " + plain("alice", "secret") + "\r\n"), wire::auth_ok);
  EXPECT_TRUE(c.logged(direction::client, "AUTH  PLAIN ****"));
  EXPECT_FALSE(c.logged(direction::client, plain("alice", "secret"))) << "secrets stay out";
  EXPECT_TRUE(c.logged(direction::event,
                       "anomaly: auth_syntax: more than one space between the parts of AUTH (RFC "
                       "4954 4: one SP), taken as one"));
  conversation cram(options());
  cram.ehlo();
  EXPECT_EQ(codes(cram.send("AUTH  CRAM-MD5\r\n")), strings{"334"});
}

TEST_F(auth_test, plain_after_an_empty_challenge) {
  conversation c(options());
  c.ehlo();
  EXPECT_EQ(codes(c.send("AUTH PLAIN\r\n")), strings{"334"});
  EXPECT_EQ(c.send(plain("alice", "secret") + "\r\n"), wire::auth_ok);
  EXPECT_TRUE(c.logged(direction::client, "****"));
}

// RFC 4954 section 4: continue-req = "334" SP [base64] CRLF, so even an empty challenge has its
// space.
TEST_F(auth_test, empty_challenge_keeps_its_space) {
  conversation c(options());
  c.ehlo();
  EXPECT_EQ(c.send("AUTH PLAIN\r\n"), "334 \r\n");
}

TEST_F(auth_test, login_in_two_steps) {
  conversation c(options());
  c.ehlo();
  EXPECT_EQ(c.send("AUTH LOGIN\r\n"), login_user_prompt);
  EXPECT_EQ(c.send(base64_encode("alice") + "\r\n"), login_pass_prompt);
  EXPECT_EQ(c.send(base64_encode("secret") + "\r\n"), wire::auth_ok);
  EXPECT_EQ(c.session().facts().auth_mechanism, "LOGIN");
}

TEST_F(auth_test, login_with_the_user_name_as_initial_response) {
  conversation c(options());
  c.ehlo();
  EXPECT_EQ(c.send("AUTH LOGIN " + base64_encode("alice") + "\r\n"), login_pass_prompt);
  EXPECT_EQ(c.send(base64_encode("wrong") + "\r\n"), wire::auth_bad);
  EXPECT_TRUE(c.session().facts().auth_user.empty());
  EXPECT_TRUE(c.logged(direction::event, "AUTH LOGIN failed for alice"));
}

TEST_F(auth_test, cram_md5_checks_the_digest_of_the_challenge_sent) {
  conversation c(options());
  c.ehlo();
  std::string challenge_reply = c.send("AUTH CRAM-MD5\r\n");
  ASSERT_TRUE(challenge_reply.starts_with("334 ")) << challenge_reply;
  auto challenge =
      proto::base64_decode(std::string_view(challenge_reply).substr(4, challenge_reply.size() - 6));
  ASSERT_TRUE(challenge.has_value());
  EXPECT_TRUE(challenge->starts_with("<") && challenge->ends_with("@smtpfault.test>"))
      << *challenge;

  // The digest of another challenge (RFC 2195's example) must not pass.
  std::string stale = proto::cram_md5_digest("secret", "<1896.697170952@postoffice.example.net>");
  EXPECT_EQ(c.send(base64_encode("alice " + stale) + "\r\n"), wire::auth_bad);

  // Nor may the digest of an earlier challenge of the same session.
  std::string old_digest = proto::cram_md5_digest("secret", *challenge);
  std::string again = c.send("AUTH CRAM-MD5\r\n");
  EXPECT_EQ(c.send(base64_encode("alice " + old_digest) + "\r\n"), wire::auth_bad);

  again = c.send("AUTH CRAM-MD5\r\n");
  auto current = proto::base64_decode(std::string_view(again).substr(4, again.size() - 6));
  ASSERT_TRUE(current.has_value());
  std::string digest = proto::cram_md5_digest("secret", *current);
  EXPECT_EQ(c.send(base64_encode("alice " + digest) + "\r\n"), wire::auth_ok);
  EXPECT_EQ(c.session().facts().auth_mechanism, "CRAM-MD5");
}

// RFC 4954 4: CRAM-MD5 starts with the server's challenge, so an initial response is refused,
// also one that answers a challenge the session sent before (and the client then cancelled).
TEST_F(auth_test, cram_md5_refuses_an_initial_response) {
  conversation c(options());
  c.ehlo();
  const std::string empty_digest = proto::cram_md5_digest("secret", "");
  const std::string refused = "501 5.5.2 CRAM-MD5 takes no initial response\r\n";
  EXPECT_EQ(c.send("AUTH CRAM-MD5 " + base64_encode("alice " + empty_digest) + "\r\n"), refused);
  const std::string sent = c.send("AUTH CRAM-MD5\r\n");
  auto challenge = proto::base64_decode(std::string_view(sent).substr(4, sent.size() - 6));
  ASSERT_TRUE(challenge.has_value());
  c.send("*\r\n");
  const std::string digest = proto::cram_md5_digest("secret", *challenge);
  EXPECT_EQ(c.send("AUTH CRAM-MD5 " + base64_encode("alice " + digest) + "\r\n"), refused);
  EXPECT_TRUE(c.session().facts().auth_user.empty());
}

// RFC 4616 2: a configured user authenticates as itself; acting for another identity is refused.
TEST_F(auth_test, plain_with_another_authorization_identity_is_refused) {
  conversation c(options());
  c.ehlo();
  const auto as = [](std::string_view authzid) {
    return "AUTH PLAIN " + base64_encode(std::string(authzid) + "\0alice\0secret"s) + "\r\n";
  };
  EXPECT_EQ(c.send(as("bob")), wire::auth_bad);
  EXPECT_TRUE(c.logged(direction::event, "AUTH PLAIN: alice may not act as bob"));
  EXPECT_EQ(c.send(as("alice")), wire::auth_ok);
}

TEST(auth_any, a_mock_that_accepts_anyone_accepts_any_authorization_identity) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("AUTH PLAIN " + base64_encode("bob\0alice\0x"s) + "\r\n"), wire::auth_ok);
}

// Each attempt gets a challenge of its own; the clock stays out of it, so that a replay with the
// same seed (the salt) sees the same challenges, and another seed other ones.
TEST_F(auth_test, cram_md5_challenge_is_new_per_attempt_and_follows_the_salt) {
  auto challenges = [&](std::uint64_t salt) {
    auto o = options();
    o.challenge_salt = salt;
    conversation c(o);
    c.ehlo();
    std::string first = c.send("AUTH CRAM-MD5\r\n");
    c.send("*\r\n");
    c.advance(std::chrono::milliseconds(1));
    return std::pair{first, c.send("AUTH CRAM-MD5\r\n")};
  };
  auto [first, second] = challenges(7);
  EXPECT_NE(first, second);
  EXPECT_EQ(challenges(7), std::pair(first, second));
  EXPECT_NE(challenges(8).first, first);
}

TEST_F(auth_test, xoauth2_token) {
  conversation c(options());
  c.ehlo();
  std::string good = base64_encode(
      "user=alice\x01"
      "auth=Bearer secret\x01\x01");
  std::string bad = base64_encode(
      "user=alice\x01"
      "auth=Bearer expired\x01\x01");
  // A refused token: the error as a JSON challenge (RFC 7628 3.2.2, as Gmail does), the 535
  // once the client has answered it with an empty line.
  std::string error = c.send("AUTH XOAUTH2 " + bad + "\r\n");
  ASSERT_TRUE(error.starts_with("334 ")) << error;
  auto json = proto::base64_decode(std::string_view(error).substr(4, error.size() - 6));
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ(*json, R"({"status":"401","schemes":"bearer","scope":"https://mail.google.com/"})");
  EXPECT_EQ(c.send("\r\n"), "535 5.7.8 Username and Password not accepted\r\n");
  EXPECT_TRUE(c.session().facts().auth_user.empty());
  EXPECT_EQ(c.send("AUTH XOAUTH2 " + good + "\r\n"), wire::auth_ok);
  EXPECT_EQ(c.session().facts().auth_mechanism, "XOAUTH2");
}

// An answer to the error challenge too long to read ends that exchange: the next AUTH is judged
// on its own credentials, not taken for the rest of it.
TEST_F(auth_test, an_over_long_answer_to_the_xoauth2_error_ends_that_exchange) {
  conversation c(options());
  c.ehlo();
  const std::string bad = base64_encode(
      "user=alice\x01"
      "auth=Bearer expired\x01\x01");
  ASSERT_TRUE(c.send("AUTH XOAUTH2 " + bad + "\r\n").starts_with("334 "));
  EXPECT_EQ(c.send(std::string(13000, 'A') + "\r\n"), wire::auth_line_too_long);
  const std::string good = base64_encode(
      "user=alice\x01"
      "auth=Bearer secret\x01\x01");
  EXPECT_EQ(c.send("AUTH XOAUTH2 " + good + "\r\n"), wire::auth_ok);
}

TEST_F(auth_test, wrong_password_and_unknown_user_get_535) {
  conversation c(options());
  c.ehlo();
  EXPECT_EQ(c.send("AUTH PLAIN " + plain("alice", "guess") + "\r\n"), wire::auth_bad);
  EXPECT_EQ(c.send("AUTH PLAIN " + plain("mallory", "secret") + "\r\n"), wire::auth_bad);
  EXPECT_TRUE(c.session().facts().auth_user.empty());
}

TEST(auth, any_credentials_pass_without_configured_users) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("AUTH PLAIN " + plain("anyone", "anything") + "\r\n"), wire::auth_ok);
  EXPECT_EQ(c.session().facts().auth_user, "anyone");
  c.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n.\r\n");
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.facts.auth_user, "anyone");
  EXPECT_EQ(c.messages()[0].msg.facts.auth_mechanism, "PLAIN");
}

TEST(auth, malformed_responses) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("AUTH PLAIN not*base64\r\n"), wire::auth_bad_base64);
  EXPECT_EQ(c.send("AUTH PLAIN " + base64_encode("no nul separators") + "\r\n"),
            "501 5.5.2 Malformed authentication response\r\n");
  EXPECT_EQ(c.send("AUTH LOGIN\r\n"), login_user_prompt);
  EXPECT_EQ(c.send("%%%\r\n"), wire::auth_bad_base64);
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok) << "back in command mode";
  // An empty user, as with the other mechanisms: accepted, it would be a login the session
  // could not tell from none (EHLO offering AUTH again, a second AUTH taken).
  const std::string malformed = "501 5.5.2 Malformed authentication response\r\n";
  EXPECT_EQ(c.send("AUTH LOGIN =\r\n"), malformed);
  EXPECT_EQ(c.send("AUTH LOGIN\r\n"), login_user_prompt);
  EXPECT_EQ(c.send("\r\n"), malformed);
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok) << "back in command mode";
}

TEST(auth, star_cancels_the_exchange) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("AUTH LOGIN\r\n"), login_user_prompt);
  EXPECT_EQ(c.send("*\r\n"), wire::auth_cancelled);
  EXPECT_EQ(c.send("AUTH LOGIN " + base64_encode("u") + "\r\n*\r\n"),
            std::string(login_pass_prompt) + std::string(wire::auth_cancelled));
  EXPECT_TRUE(c.session().facts().auth_user.empty());
}

// Go's net/smtp sends "*" after an AUTH that already failed: no command, and noted as out of
// place, since it only answers a 334 challenge (RFC 4954 4).
TEST(auth, a_star_after_the_exchange_ended_is_noted) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("AUTH LOGIN\r\n"), login_user_prompt);
  EXPECT_EQ(c.send("*\r\n"), wire::auth_cancelled);
  EXPECT_FALSE(c.logged(direction::event, "anomaly: auth_cancel")) << "in answer to a 334";
  EXPECT_EQ(c.send("*\r\n").substr(0, 4), "500 ");
  EXPECT_TRUE(c.logged(direction::event, "anomaly: auth_cancel: '*' came as a command"));
}

TEST(auth, refused_outside_ehlo_or_when_hidden) {
  {
    conversation c;
    EXPECT_EQ(c.send("AUTH PLAIN\r\n"), "503 Send EHLO first\r\n");
    c.send("HELO client.test\r\n");
    EXPECT_EQ(c.send("AUTH PLAIN\r\n"), "503 Send EHLO first\r\n");
    c.ehlo();
    EXPECT_EQ(c.send("AUTH GSSAPI\r\n"), "504 5.5.4 Unrecognized authentication type\r\n");
  }
  {
    conversation c(without({extension::auth}));
    c.ehlo();
    EXPECT_EQ(c.send("AUTH PLAIN " + plain("a", "b") + "\r\n"), "502 5.5.1 AUTH not available\r\n");
  }
}

TEST(auth, response_line_limit_is_12288_octets) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(codes(c.send("AUTH PLAIN\r\n")), strings{"334"});
  EXPECT_EQ(c.send(std::string(12289, 'A') + "\r\n"), wire::auth_line_too_long);
  EXPECT_TRUE(c.logged(direction::client, "<over-long AUTH line discarded>"));
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok);
}

// --- STARTTLS (RFC 3207) ----------------------------------------------------------------------

TEST(starttls, upgrades_and_forgets_the_plaintext_session) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("AUTH PLAIN " + plain("alice", "pw") + "\r\n"), wire::auth_ok);
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_EQ(c.send("STARTTLS\r\n"), wire::tls_go);
  EXPECT_EQ(c.tls_handshakes(), 1);

  // Section 4.2: the client must EHLO again and the server forgets what it was told.
  const session_facts& f = c.session().facts();
  EXPECT_TRUE(f.tls);
  EXPECT_EQ(f.tls_version, "TLSv1.3");
  EXPECT_EQ(f.tls_cipher, "TEST");
  EXPECT_TRUE(f.helo.empty());
  EXPECT_TRUE(f.auth_user.empty());
  EXPECT_TRUE(f.auth_mechanism.empty());
  EXPECT_TRUE(c.logged(direction::event, "TLS established: TLSv1.3 TEST"));
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::need_helo);

  std::string ehlo = c.send("EHLO client.test\r\n");
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos);
  EXPECT_NE(ehlo.find("AUTH PLAIN"), std::string::npos) << "AUTH is offered again";
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_mail) << "the transaction did not survive";
  EXPECT_EQ(c.send("STARTTLS\r\n"), "503 5.5.1 TLS already active\r\n");
  EXPECT_EQ(c.tls_handshakes(), 1);

  c.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n.\r\n");
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_TRUE(c.messages()[0].msg.facts.tls);
  EXPECT_EQ(c.messages()[0].msg.facts.tls_version, "TLSv1.3");
}

// CVE-2011-0411: commands injected behind STARTTLS in the same segment must not be run inside
// the TLS session.
TEST(starttls, pipelined_plaintext_is_discarded) {
  conversation c;
  c.ehlo();
  const std::string injected = "MAIL FROM:<evil@x.test>\r\nRCPT TO:<b@y.test>\r\n";
  EXPECT_EQ(c.send("STARTTLS\r\n" + injected), wire::tls_go);
  EXPECT_TRUE(c.unread().empty());
  EXPECT_TRUE(c.logged(direction::event, "discarded " + std::to_string(injected.size()) +
                                             " octets of plaintext pipelined after STARTTLS"));
  EXPECT_FALSE(c.logged(direction::client, "evil"));
  c.ehlo();
  EXPECT_EQ(c.send("RCPT TO:<b@y.test>\r\n"), wire::need_mail_before_rcpt);
}

TEST(starttls, refused_when_hidden) {
  conversation c(without({extension::starttls}));
  EXPECT_EQ(c.send("EHLO client.test\r\n").find("STARTTLS"), std::string::npos);
  EXPECT_EQ(c.send("STARTTLS\r\n"), "502 5.5.1 STARTTLS not available\r\n");
  EXPECT_EQ(c.tls_handshakes(), 0);
}

}  // namespace
}  // namespace smtpfault::session::testing
