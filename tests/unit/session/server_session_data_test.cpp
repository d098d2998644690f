// server_session: message content through DATA and BDAT, LMTP delivery replies, and a sweep
// proving the output does not depend on how TCP cuts the client's bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "conversation.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session::testing {
namespace {

using strings = std::vector<std::string>;

std::string data_reply(std::string_view id = "id-1") {
  return std::string(wire::go_ahead) + wire::queued(id);
}

// --- DATA -------------------------------------------------------------------------------------

TEST(server_session_data, size_limit_gives_552_after_the_terminator) {
  server_options o;
  o.limits.max_message_size = 10;
  conversation c(o);
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\n"), wire::go_ahead);
  EXPECT_EQ(c.send("0123456789abcdef\r\n"), "") << "read to the end before replying";
  EXPECT_EQ(c.send(".\r\n"), wire::size_exceeded);
  EXPECT_TRUE(c.messages().empty());
  EXPECT_EQ(c.send("DATA\r\n"), wire::need_mail) << "the transaction is gone";
}

// When the refused message is the error that reaches max_errors, the session must stay closed.
TEST(server_session_data, refused_message_can_be_the_last_error) {
  server_options o;
  o.limits.max_message_size = 4;
  o.max_errors = 1;
  conversation c(o);
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\ntoo big\r\n.\r\nNOOP\r\n"), std::string(wire::go_ahead) +
                                                            std::string(wire::size_exceeded) +
                                                            std::string(wire::too_many_errors));
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(c.session().closed());
  EXPECT_FALSE(c.logged(direction::client, "NOOP")) << "nothing after the 421 is read";
}

// The driver hands back a buffer the store forgot; the next message is read into it, and none of
// what it held before may show through, by DATA or by BDAT.
TEST(server_session_data, a_recycled_body_buffer_starts_empty) {
  conversation c;
  c.session().recycle_body(std::string(2000, '!'));
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\nfirst\r\n.\r\n"), data_reply("id-1"));
  c.session().recycle_body("stale octets that must not appear");
  c.open_transaction();
  c.send("BDAT 7 LAST\r\nsecond!");
  ASSERT_EQ(c.messages().size(), 2u);
  EXPECT_EQ(c.messages()[0].msg.data, "first\r\n");
  EXPECT_EQ(c.messages()[1].msg.data, "second!");
}

// The store keeps a body with its buffer: a small message read into room recycled from a big
// one must not hold that room.
TEST(server_session_data, a_small_body_gives_back_the_room_of_a_recycled_big_one) {
  conversation c;
  c.session().recycle_body(std::string(1 << 20, '!'));
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\nsmall\r\n.\r\n"), data_reply("id-1"));
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.data, "small\r\n");
  EXPECT_LT(c.messages()[0].msg.data.capacity(), 64u * 1024);
}

// A load test sends one size over and over: the next body is read into room for the last one's
// size, not grown from nothing (each growth a reallocation and a copy).
TEST(server_session_data, the_next_body_has_room_for_the_last_ones_size) {
  conversation c;
  std::string text;
  for (int line = 0; line < 50; ++line)
    text += std::string(60, 'x') + "\r\n";
  for (int i = 1; i <= 2; ++i) {
    c.open_transaction();
    EXPECT_EQ(c.send("DATA\r\n" + text + ".\r\n"), data_reply("id-" + std::to_string(i)));
  }
  ASSERT_EQ(c.messages().size(), 2u);
  EXPECT_EQ(c.messages()[1].msg.data, text);
  EXPECT_EQ(c.messages()[1].msg.data.capacity(), text.size()) << "grown instead of reserved";
}

// A client gone in the middle of the text: how far it got, and what was odd in it, is noted.
TEST(server_session_data, a_client_gone_in_the_data_is_noted_with_how_far_it_got) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\n"), wire::go_ahead);
  EXPECT_EQ(c.send(std::string("Subject: x\r\nab\0c", 17)), "");
  c.session().on_client_closed("End of file", c.now());
  EXPECT_TRUE(c.logged(direction::event, "anomaly: nul at offset"));
  EXPECT_TRUE(c.logged(direction::event,
                       "client closed the connection (End of file) in the message data, after"));
  EXPECT_TRUE(c.messages().empty());
  conversation idle;
  idle.session().on_client_closed("End of file", idle.now());
  EXPECT_TRUE(idle.logged(direction::event, "client closed the connection (End of file)"));
  EXPECT_FALSE(idle.logged(direction::event, "in the message data"));
}

TEST(server_session_data, over_long_text_line_is_refused_at_the_end) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\n" + std::string(998, 'x') + "\r\n.\r\n"), data_reply("id-1"));
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\n" + std::string(999, 'x') + "\r\n.\r\n"),
            std::string(wire::go_ahead) + "500 5.5.2 Line too long (limit 1000 octets)\r\n");
  EXPECT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok);
}

// A "." line the client did not double ends the message; the rest of it, written with it,
// arrives as commands. No dot is left in the stored message to show the bug, so the first
// such line is what is noted.
TEST(server_session_data, text_behind_the_end_of_data_that_is_no_command_is_an_unstuffed_dot) {
  const std::string_view note = "anomaly: unstuffed_dot: the data ended at a line \".\" with";
  conversation c;
  c.open_transaction();
  c.send("DATA\r\n");
  c.send("first part\r\n.\r\nsecond part\r\n.\r\n");
  EXPECT_EQ(c.messages().size(), 1u);
  EXPECT_TRUE(c.logged(direction::event, "with \"second part\" behind it in the same write"));

  conversation pipelining;  // a command behind the end is a client that pipelines
  pipelining.open_transaction();
  pipelining.send("DATA\r\n");
  pipelining.send("text\r\n.\r\nQUIT\r\n");
  EXPECT_FALSE(pipelining.logged(direction::event, note));

  conversation later;  // the same line, written after the reply, is only a bad command
  later.open_transaction();
  later.send("DATA\r\n");
  later.send("text\r\n.\r\n");
  later.send("second part\r\n");
  EXPECT_FALSE(later.logged(direction::event, note));
}

// RFC 6152 3: an 8-bit body is declared with BODY=8BITMIME (SMTPUTF8 implies it). The message
// is taken; the slip is noted, with where its first 8-bit octet is.
TEST(server_session_data, an_undeclared_8bit_body_is_noted) {
  const std::string body = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n";
  for (const std::string params : {"", " BODY=8BITMIME", " SMTPUTF8", " BODY=7BIT"}) {
    conversation c;
    c.ehlo();
    c.send("MAIL FROM:<a@x.test>" + params + "\r\n");
    c.send("RCPT TO:<b@y.test>\r\n");
    c.send("DATA\r\n");
    c.send(body + ".\r\n");
    ASSERT_EQ(c.messages().size(), 1u) << params;
    const bool declared = params == " BODY=8BITMIME" || params == " SMTPUTF8";
    EXPECT_EQ(c.logged(direction::event, "anomaly: undeclared_8bit at offset 17"), !declared)
        << params;
    const auto& found = c.messages()[0].msg.anomalies;
    EXPECT_EQ(found.size(), declared ? 0u : 1u) << params;
  }
}

// A message refused at its end for another reason (a line too long) is noted for its 8-bit
// octets too: what the client sent is the same, and a check of it should not hear otherwise.
TEST(server_session_data, an_undeclared_8bit_body_is_noted_when_the_message_is_refused) {
  conversation c;
  c.open_transaction();
  c.send("DATA\r\n");
  EXPECT_EQ(c.send("Subject: caf\xc3\xa9\r\n\r\n" + std::string(1200, 'x') + "\r\n.\r\n"),
            "500 5.5.2 Line too long (limit 1000 octets)\r\n");
  EXPECT_TRUE(c.messages().empty());
  EXPECT_TRUE(c.logged(direction::event, "anomaly: undeclared_8bit at offset 12"));
  EXPECT_TRUE(c.logged(direction::event, "anomaly: long_line"));
}

// RFC 3030 2: a line "." in BDAT data is content, and noted: a relay that passes the message on
// with DATA, unstuffed, would end it there.
TEST(server_session_data, a_dot_line_in_bdat_data_is_noted) {
  conversation c;
  c.open_transaction();
  c.send("BDAT 14 LAST\r\nfirst\r\n.\r\nmore");
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.data, "first\r\n.\r\nmore");
  EXPECT_TRUE(c.logged(direction::event, "anomaly: dot_line at offset 7"));
  conversation plain;
  plain.open_transaction();
  plain.send("BDAT 12 LAST\r\nfirst\r\n.x\r\n");
  EXPECT_FALSE(plain.logged(direction::event, "anomaly: dot_line"));
}

TEST(server_session_data, bare_lf_cr_and_nul_are_kept_and_recorded) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("DATA\r\na\nb\rc\0d\r\n.\r\n"s), data_reply());
  ASSERT_EQ(c.messages().size(), 1u);
  const message& m = c.messages()[0].msg;
  EXPECT_EQ(m.data, "a\nb\rc\0d\r\n"s);
  ASSERT_EQ(m.anomalies.size(), 3u);
  EXPECT_EQ(m.anomalies[0].kind, proto::anomaly_kind::bare_lf);
  EXPECT_EQ(m.anomalies[0].offset, 1u);
  EXPECT_EQ(m.anomalies[1].kind, proto::anomaly_kind::bare_cr);
  EXPECT_EQ(m.anomalies[1].offset, 3u);
  EXPECT_EQ(m.anomalies[2].kind, proto::anomaly_kind::nul);
  EXPECT_EQ(m.anomalies[2].offset, 5u);
  EXPECT_TRUE(c.logged(direction::event, "anomaly: bare_lf at offset 1"));
  EXPECT_TRUE(c.logged(direction::event, "anomaly: bare_cr at offset 3"));
  EXPECT_TRUE(c.logged(direction::event, "anomaly: nul at offset 5"));
}

// SMTP smuggling: only CRLF.CRLF ends the data, so a second message hidden behind "\n.\n" stays
// part of the first.
TEST(server_session_data, lf_dot_lf_does_not_end_the_data) {
  conversation c;
  c.open_transaction();
  std::string smuggled = "x\n.\nMAIL FROM:<evil@x.test>\r\n";
  EXPECT_EQ(c.send("DATA\r\n" + smuggled), wire::go_ahead);
  EXPECT_EQ(c.send(".\r\n"), wire::queued("id-1"));
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.data, smuggled);
  EXPECT_FALSE(c.messages()[0].msg.anomalies.empty());
}

TEST(server_session_data, commands_pipelined_after_the_data_wait_for_the_store) {
  conversation c;
  c.open_transaction();
  // One segment carries the end of data and the next transaction: the session stops at the
  // delivery, and the rest is fed again once on_stored is called.
  EXPECT_EQ(codes(c.send("DATA\r\none\r\n.\r\nMAIL FROM:<a2@x.test>\r\nRCPT TO:<b@y.test>\r\n"
                         "DATA\r\ntwo\r\n.\r\n")),
            (strings{"354", "250 2.0.0", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0"}));
  ASSERT_EQ(c.messages().size(), 2u);
  EXPECT_EQ(c.messages()[0].msg.data, "one\r\n");
  EXPECT_EQ(c.messages()[1].msg.data, "two\r\n");
  EXPECT_EQ(c.messages()[1].msg.env.mail_from.address(), "a2@x.test");
}

// --- BDAT (RFC 3030) --------------------------------------------------------------------------

TEST(server_session_bdat, chunks_make_one_message) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT 5\r\nhello"), wire::octets_received(5));
  EXPECT_EQ(c.send("BDAT 8 LAST\r\n\r\n.world"), wire::queued("id-1"));
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.data, "hello\r\n.world") << "no dot-unstuffing in BDAT";
  EXPECT_TRUE(c.messages()[0].msg.via_bdat);
}

TEST(server_session_bdat, what_data_would_note_is_noted_and_a_long_line_refused) {
  // As over DATA: the same anomalies at the same offsets, and the same refusal.
  conversation c;
  c.open_transaction();
  const std::string body = "a\nb\rc\0d\r\n"s;
  EXPECT_EQ(c.send("BDAT 4\r\n" + body.substr(0, 4)), wire::octets_received(4));
  EXPECT_EQ(c.send("BDAT " + std::to_string(body.size() - 4) + " LAST\r\n" + body.substr(4)),
            wire::queued("id-1"));
  ASSERT_EQ(c.messages().size(), 1u);
  const message& m = c.messages()[0].msg;
  ASSERT_EQ(m.anomalies.size(), 3u);
  EXPECT_EQ(m.anomalies[0].kind, proto::anomaly_kind::bare_lf);
  EXPECT_EQ(m.anomalies[0].offset, 1u);
  EXPECT_EQ(m.anomalies[1].kind, proto::anomaly_kind::bare_cr);
  EXPECT_EQ(m.anomalies[1].offset, 3u);
  EXPECT_EQ(m.anomalies[2].kind, proto::anomaly_kind::nul);
  EXPECT_EQ(m.anomalies[2].offset, 5u);
  EXPECT_TRUE(c.logged(direction::event, "anomaly: nul at offset 5"));

  c.open_transaction();
  const std::string fits = std::string(998, 'x') + "\r\n";
  EXPECT_EQ(c.send("BDAT 1000 LAST\r\n" + fits), wire::queued("id-2"));
  c.open_transaction();
  const std::string too_long = std::string(999, 'x') + "\r\n";
  EXPECT_EQ(c.send("BDAT 1001 LAST\r\n" + too_long),
            "500 5.5.2 Line too long (limit 1000 octets)\r\n");
  EXPECT_EQ(c.messages().size(), 2u);
  EXPECT_TRUE(c.logged(direction::event, "anomaly: long_line at offset 1000"));
  EXPECT_EQ(c.send("NOOP\r\n"), wire::ok);
  // A last line without its CRLF is held to the same limit: 998 octets, not 1,000.
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT 998 LAST\r\n" + std::string(998, 'x')), wire::queued("id-3"));
  for (std::size_t unterminated : {999u, 1000u}) {
    c.open_transaction();
    EXPECT_EQ(c.send("BDAT " + std::to_string(unterminated) + " LAST\r\n" +
                     std::string(unterminated, 'x')),
              "500 5.5.2 Line too long (limit 1000 octets)\r\n")
        << unterminated;
    EXPECT_TRUE(c.logged(direction::event, "anomaly: long_line at offset 998"));
  }
  EXPECT_EQ(c.messages().size(), 3u);
}

TEST(server_session_bdat, zero_size_last_chunk_ends_the_message) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT 3\r\nabcBDAT 0 LAST\r\n"),
            wire::octets_received(3) + wire::queued("id-1"));
  EXPECT_EQ(c.messages()[0].msg.data, "abc");
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT 0 LAST\r\n"), wire::queued("id-2"));
  EXPECT_EQ(c.messages()[1].msg.data, "");
  EXPECT_TRUE(c.messages()[1].msg.via_bdat);
}

// RFC 3030 2: the chunk follows its BDAT at once, in the same write as a rule. Only what comes
// behind the chunk was sent without waiting for a reply.
TEST(server_session_bdat, a_chunk_behind_its_command_is_not_pipelining) {
  const auto pipelined = [](const conversation& c) {
    return c.logged(direction::event, "client pipelined commands");
  };
  conversation c;
  c.open_transaction();
  c.send("BDAT 5\r\nhello");
  c.send("BDAT 6 LAST\r\nworld!");
  EXPECT_FALSE(pipelined(c));
  c.send("MAIL FROM:<a@x.test>\r\n");
  c.send("BDAT 7 LAST\r\nrefused");  // refused (no RCPT), read all the same
  EXPECT_FALSE(pipelined(c)) << "still nothing behind a chunk";
  c.send("NOOP\r\n");
  c.send("BDAT 5\r\nhelloBDAT 0 LAST\r\n");
  EXPECT_TRUE(pipelined(c)) << "a command behind a chunk, in the same read";

  conversation empty_chunk;
  empty_chunk.open_transaction();
  empty_chunk.send("BDAT 0 LAST\r\nQUIT\r\n");
  EXPECT_TRUE(pipelined(empty_chunk)) << "nothing follows an empty chunk but the next command";
  conversation refused;
  refused.ehlo();
  refused.send("BDAT 3\r\nabcNOOP\r\n");
  EXPECT_TRUE(pipelined(refused)) << "behind a refused chunk";
}

TEST(server_session_bdat, chunk_octets_may_look_like_commands) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n"),
            wire::queued("id-1") + std::string(wire::ok));
  EXPECT_EQ(c.messages()[0].msg.data, "QUIT\r\n");
  EXPECT_FALSE(c.closed());
}

TEST(server_session_bdat, rejected_chunk_is_still_consumed) {
  conversation c;
  c.ehlo();
  // No MAIL: the chunk is refused, but its octets must not be read as commands.
  EXPECT_EQ(c.send("BDAT 6\r\nQUIT\r\nNOOP\r\n"), std::string(wire::need_mail) + wire::ok);
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\nBDAT 4 LAST\r\nRSETNOOP\r\n"),
            wire::sender_ok("a@x.test") + std::string(wire::need_rcpt) + std::string(wire::ok));
  EXPECT_TRUE(c.messages().empty());
}

// RFC 3030 2: CHUNKING is offered in the EHLO reply only; after HELO a BDAT is refused, and its
// chunk, whose size is known, is read and dropped rather than taken for commands.
TEST(server_session_bdat, bdat_after_helo_is_refused_and_its_chunk_dropped) {
  conversation c;
  c.send("HELO client.test\r\n");
  c.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  EXPECT_EQ(c.send("BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n"),
            "503 BDAT needs EHLO: CHUNKING was not offered after HELO\r\n250 Ok\r\n");
  EXPECT_EQ(codes(c.send("BDAT 0 LAST\r\n")), strings{"503"});
  EXPECT_FALSE(c.closed());
  EXPECT_TRUE(c.messages().empty());
  // The envelope stands: DATA, which HELO does offer, delivers.
  EXPECT_EQ(codes(c.send("DATA\r\n")), strings{"354"});
  EXPECT_EQ(codes(c.send("hi\r\n.\r\n")), strings{"250"});
  EXPECT_EQ(c.messages().size(), 1u);
}

// A refused chunk carries no message octets, so it must not count towards the next message.
TEST(server_session_bdat, rejected_chunk_does_not_count_towards_the_next_message) {
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("BDAT 5\r\nhello"), wire::need_mail);
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"),
            wire::sender_ok("a@x.test") + wire::recipient_ok("b@y.test"));
  EXPECT_EQ(c.send("BDAT 3\r\nabc"), wire::octets_received(3));
  EXPECT_EQ(c.send("BDAT 0 LAST\r\n"), wire::queued("id-1"));
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.data, "abc");
  EXPECT_TRUE(c.messages()[0].msg.via_bdat);
}

TEST(server_session_bdat, data_is_allowed_after_a_rejected_chunk) {
  // The refused chunk leaves no trace that would make this look like DATA after BDAT.
  conversation c;
  c.ehlo();
  EXPECT_EQ(c.send("BDAT 5\r\nhello"), wire::need_mail);
  c.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n");
  EXPECT_EQ(c.send("DATA\r\n"), wire::go_ahead);
}

TEST(server_session_bdat, data_after_bdat_is_refused) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT 2\r\nhiDATA\r\n"),
            wire::octets_received(2) + "503 5.5.1 DATA not allowed after BDAT\r\n");
  // An empty chunk begins the message as BDAT too.
  conversation empty;
  empty.open_transaction();
  EXPECT_EQ(empty.send("BDAT 0\r\nDATA\r\n"),
            wire::octets_received(0) + "503 5.5.1 DATA not allowed after BDAT\r\n");
}

TEST(server_session_bdat, size_limit_gives_552) {
  server_options o;
  o.limits.max_message_size = 4;
  conversation c(o);
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT 3\r\nabc"), wire::octets_received(3));
  EXPECT_EQ(c.send("BDAT 2 LAST\r\nde"), wire::size_exceeded);
  EXPECT_TRUE(c.messages().empty());
  EXPECT_EQ(c.send("BDAT 1 LAST\r\nx"), wire::need_mail) << "the transaction is gone";
}

TEST(server_session_bdat, unparsable_size_closes_the_connection_with_a_421) {
  conversation c;
  c.open_transaction();
  EXPECT_EQ(c.send("BDAT lots\r\nNOOP\r\n"),
            "501 5.5.4 Syntax: BDAT <size> [LAST]\r\n"
            "421 4.5.0 smtpfault.test Malformed BDAT, closing connection\r\n");
  EXPECT_TRUE(c.closed());
}

// --- LMTP (RFC 2033) --------------------------------------------------------------------------

server_options lmtp() {
  server_options o;
  o.lmtp = true;
  return o;
}

TEST(server_session_lmtp, needs_lhlo) {
  conversation c(lmtp(), /*start=*/false);
  c.session().start(t0);
  EXPECT_EQ(c.send(""), wire::lmtp_greeting);
  EXPECT_EQ(c.send("EHLO client.test\r\n"), "500 This is an LMTP server: use LHLO\r\n");
  EXPECT_EQ(c.send("HELO client.test\r\n"), "500 This is an LMTP server: use LHLO\r\n");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), "503 Send LHLO first\r\n");
  EXPECT_EQ(c.send("HELP\r\n").substr(0, 34), "214 Commands: LHLO MAIL RCPT DATA ");
  EXPECT_EQ(c.send("LHLO client.test\r\n").substr(0, 4), "250-");
  EXPECT_EQ(c.send("MAIL FROM:<a@x.test>\r\n"), wire::sender_ok("a@x.test"));
  EXPECT_TRUE(c.session().facts().lmtp);
}

// RFC 2033 section 4.2: after the final ".", one reply for each successful RCPT, in order.
TEST(server_session_lmtp, one_reply_per_recipient_after_data) {
  conversation c(lmtp());
  c.send(
      "LHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b1@y.test>\r\n"
      "RCPT TO:<b2@y.test>\r\n");
  EXPECT_EQ(c.send("DATA\r\nhi\r\n.\r\n"),
            std::string(wire::go_ahead) + wire::queued("id-1") + wire::queued("id-1"));
}

TEST(server_session_lmtp, one_reply_per_recipient_after_bdat) {
  // The same through BDAT.
  conversation c(lmtp());
  c.send(
      "LHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b1@y.test>\r\n"
      "RCPT TO:<b2@y.test>\r\n");
  EXPECT_EQ(c.send("BDAT 2 LAST\r\nhi"), wire::queued("id-1") + wire::queued("id-1"));
}

// A refused message is refused for each recipient too, or the client falls out of step: it
// would wait for the missing replies, or take the next command's for one of them.
TEST(server_session_lmtp, a_refused_message_gets_a_reply_per_recipient) {
  const std::string envelope =
      "LHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b1@y.test>\r\n"
      "RCPT TO:<b2@y.test>\r\nRCPT TO:<b3@y.test>\r\n";
  const std::string too_big = "552 5.3.4 Message size exceeds fixed maximum message size\r\n";
  const std::string too_long = "500 5.5.2 Line too long (limit 8 octets)\r\n";
  const std::string noop = "250 2.0.0 Ok\r\n";
  const std::string x30(30, 'x'), x10(10, 'x');
  struct refusal {
    std::size_t max_size;
    std::string message, replies;
  };
  const refusal cases[] = {
      {20, "DATA\r\n" + x30 + "\r\n.\r\nNOOP\r\n",
       std::string(wire::go_ahead) + too_big + too_big + too_big + noop},
      {20, "BDAT 30 LAST\r\n" + x30 + "NOOP\r\n", too_big + too_big + too_big + noop},
      {100, "DATA\r\n" + x10 + "\r\n.\r\nNOOP\r\n",
       std::string(wire::go_ahead) + too_long + too_long + too_long + noop},
      {100, "BDAT 10 LAST\r\n" + x10 + "NOOP\r\n", too_long + too_long + too_long + noop},
      // A chunk that is not the last answers for itself alone.
      {20, "BDAT 30\r\n" + x30 + "NOOP\r\n", too_big + noop},
  };
  for (const auto& [max_size, message, replies] : cases) {
    auto o = lmtp();
    o.limits.max_message_size = max_size;
    o.limits.text_line = 8;
    conversation c(o);
    c.send(envelope);
    EXPECT_EQ(c.send(message), replies) << message;
    EXPECT_TRUE(c.messages().empty());
  }
}

TEST(server_session_lmtp, message_is_stored_once_with_all_recipients) {
  conversation c(lmtp());
  c.send(
      "LHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b1@y.test>\r\n"
      "RCPT TO:<b2@y.test>\r\nDATA\r\nhi\r\n.\r\n");
  ASSERT_EQ(c.messages().size(), 1u);
  EXPECT_EQ(c.messages()[0].msg.env.recipients.size(), 2u);
  EXPECT_TRUE(c.messages()[0].msg.facts.lmtp);
}

// --- framing independence ---------------------------------------------------------------------

struct run_result {
  std::string output;
  std::vector<std::string> bodies;
  std::vector<std::pair<direction, std::string>> log;
  bool closed = false;
};

template <class Feed>
run_result run(const server_options& o, Feed feed) {
  conversation c(o);
  feed(c);
  run_result r{c.output(), {}, {}, c.closed()};
  for (const auto& m : c.messages())
    r.bodies.push_back(m.msg.data);
  // Whether a client pipelined is a fact about how its octets arrived, so it is left out.
  for (const auto& e : c.log().entries())
    if (!e.text.starts_with("client pipelined commands")) r.log.emplace_back(e.dir, e.text);
  return r;
}

void expect_framing_independent(std::string_view client, const server_options& o = {}) {
  run_result whole = run(o, [&](conversation& c) { c.send(client); });
  for (std::size_t cut = 0; cut <= client.size(); ++cut) {
    run_result split = run(o, [&](conversation& c) { c.send_cut(client, cut); });
    ASSERT_EQ(split.output, whole.output) << "cut at " << cut;
    ASSERT_EQ(split.bodies, whole.bodies) << "cut at " << cut;
    ASSERT_EQ(split.log, whole.log) << "cut at " << cut;
    ASSERT_EQ(split.closed, whole.closed) << "cut at " << cut;
  }
  run_result bytewise = run(o, [&](conversation& c) { c.send_bytewise(client); });
  EXPECT_EQ(bytewise.output, whole.output);
  EXPECT_EQ(bytewise.bodies, whole.bodies);
  EXPECT_EQ(bytewise.log, whole.log);
}

TEST(server_session_sweep, smtp_conversation_at_every_cut) {
  const std::string client =
      "EHLO client.test\r\n"
      "MAIL FROM:<a@x.test> SIZE=20\r\n"
      "RCPT TO:<b@y.test>\r\n"
      "RCPT TO:<>\r\n"
      "DATA\r\n"
      "Subject: t\r\n\r\n..x\nbare\r\n.\r\n"
      "MAIL FROM:<c@x.test>\r\n"
      "RCPT TO:<d@y.test>\r\n"
      "BDAT 7\r\nQUIT\r\nx"
      "BDAT 0 LAST\r\n"
      "NOOP " +
      std::string(600, 'n') +
      "\r\n"
      "BDAT 3\r\nabc"
      "RSET\r\n"
      "AUTH LOGIN\r\nYQ==\r\nYg==\r\n"
      "QUIT\r\n";
  expect_framing_independent(client);
  run_result whole = run({}, [&](conversation& c) { c.send(client); });
  EXPECT_EQ(whole.bodies, (strings{"Subject: t\r\n\r\n.x\nbare\r\n", "QUIT\r\nx"}));
  EXPECT_EQ(codes(whole.output),
            (strings{"220", "250", "250 2.1.0", "250 2.1.5", "501 5.1.3", "354", "250 2.0.0",
                     "250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0", "500 5.5.2", "503 5.5.1",
                     "250 2.0.0", "334", "334", "235 2.7.0", "221 2.0.0"}));
  EXPECT_TRUE(whole.closed);
}

TEST(server_session_sweep, errors_and_limits_at_every_cut) {
  server_options o;
  o.limits.max_message_size = 8;
  o.max_errors = 6;
  const std::string client =
      "HELO client.test\r\n"
      "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
      "DATA\r\n0123456789\r\n.\r\n"
      "BDAT 4\r\nabcd"
      "FOO\r\n\r\nEXPN x\r\nDATA\r\n"
      "NOOP\r\n";
  expect_framing_independent(client, o);
  run_result whole = run(o, [&](conversation& c) { c.send(client); });
  EXPECT_EQ(codes(whole.output), (strings{"220", "250", "250", "250", "354", "552", "503", "500",
                                          "500", "502", "503", "421"}));
}

}  // namespace
}  // namespace smtpfault::session::testing
