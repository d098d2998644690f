// The client's reply channel: bytes in at any split, typed replies out; malformed replies are
// values and the stream carries on after them.
#include "proto/reply_stream.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace smtpfault::proto {
namespace {

std::vector<reply> all_replies(reply_stream& s) {
  std::vector<reply> out;
  for (auto r = s.next(); r.st != reply_stream::status::need_more; r = s.next()) {
    EXPECT_EQ(r.st, reply_stream::status::reply) << r.error;
    out.push_back(r.reply);
  }
  return out;
}

const std::string ehlo =
    "250-mx.example greets you\r\n250-PIPELINING\r\n250 2.0.0 SIZE 1000\r\n354 go ahead\r\n";

TEST(reply_stream, whole_replies_from_one_read) {
  reply_stream s;
  s.feed(ehlo);
  auto got = all_replies(s);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].code, 250);
  EXPECT_EQ(got[0].lines,
            (std::vector<std::string>{"mx.example greets you", "PIPELINING", "2.0.0 SIZE 1000"}));
  EXPECT_EQ(got[1].code, 354);
  EXPECT_EQ(s.buffered(), 0u);
}

// The same bytes split at every offset give the same replies.
TEST(reply_stream, split_at_every_offset) {
  for (std::size_t cut = 0; cut <= ehlo.size(); ++cut) {
    reply_stream s;
    s.feed(ehlo.substr(0, cut));
    auto first = all_replies(s);
    s.feed(ehlo.substr(cut));
    auto rest = all_replies(s);
    first.insert(first.end(), rest.begin(), rest.end());
    ASSERT_EQ(first.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(first[0].lines.size(), 3u);
    EXPECT_EQ(first[1].code, 354);
  }
}

TEST(reply_stream, enhanced_codes_are_parsed) {
  reply_stream s;
  s.feed("550 5.7.1 Relay denied\r\n");
  auto r = s.next();
  ASSERT_EQ(r.st, reply_stream::status::reply);
  EXPECT_EQ(r.reply.enhanced, "5.7.1");
  EXPECT_EQ(r.reply.lines.at(0), "Relay denied");
}

TEST(reply_stream, malformed_reply_then_recovery) {
  reply_stream s;
  s.feed("250-first\r\n550 mixed\r\nhello\r\n221 bye\r\n");
  auto a = s.next();
  EXPECT_EQ(a.st, reply_stream::status::malformed);
  EXPECT_NE(a.error.find("code changed"), std::string::npos) << a.error;
  auto b = s.next();
  EXPECT_EQ(b.st, reply_stream::status::malformed);
  EXPECT_NE(b.error.find("'hello'"), std::string::npos) << b.error;
  auto c = s.next();
  ASSERT_EQ(c.st, reply_stream::status::reply);
  EXPECT_EQ(c.reply.code, 221);
}

TEST(reply_stream, over_long_line_is_malformed_and_bounded) {
  reply_stream s(100);
  s.feed("250 " + std::string(500, 'x'));
  EXPECT_EQ(s.next().st, reply_stream::status::need_more);
  EXPECT_LT(s.buffered(), 100u);  // dropped as it arrives
  s.feed(std::string(500, 'y') + "\r\n250 ok\r\n");
  auto bad = s.next();
  EXPECT_EQ(bad.st, reply_stream::status::malformed);
  EXPECT_EQ(bad.error,
            "reply line longer than 100 octets (1006 octets up to its line end, dropped)");
  auto r = s.next();
  ASSERT_EQ(r.st, reply_stream::status::reply) << r.error;
  EXPECT_EQ(r.reply.lines.at(0), "ok");
}

// Reported while it went on, an over-long line is not malformed again at its end: it is
// dropped up to its line end, said with its size, and the replies after it are read.
TEST(reply_stream, over_long_line_reported_early_is_dropped_to_its_end) {
  reply_stream s(100);
  s.feed("220 " + std::string(500, 'x'));
  EXPECT_EQ(s.next().st, reply_stream::status::need_more);
  ASSERT_TRUE(s.overlong_to_report());
  EXPECT_EQ(s.report_overlong(), "a reply line longer than 100 octets, still without its end");
  EXPECT_FALSE(s.overlong_to_report());
  EXPECT_EQ(s.unfinished(), "504 octets of an over-long line, dropped as they came");
  s.feed(std::string(94, 'y') + "\r\n250 ok\r\n");
  auto dropped = s.next();
  ASSERT_EQ(dropped.st, reply_stream::status::dropped);
  EXPECT_EQ(dropped.error,
            "the over-long reply line ended: 600 octets up to its line end, dropped");
  auto r = s.next();
  ASSERT_EQ(r.st, reply_stream::status::reply) << r.error;
  EXPECT_EQ(r.reply.code, 250);
  // The next over-long line is a fault of its own again.
  s.feed(std::string(200, 'z') + "\r\n");
  EXPECT_EQ(s.next().st, reply_stream::status::malformed);
}

TEST(reply_stream, endless_continuation_lines_are_malformed_not_kept) {
  reply_stream s;
  std::string flood;
  for (std::size_t i = 0; i < reply_reader::max_lines + 5; ++i)
    flood += "220-still greeting\r\n";
  s.feed(flood + "250 ok\r\n");
  auto r = s.next();
  ASSERT_EQ(r.st, reply_stream::status::malformed);
  EXPECT_NE(r.error.find("multi-line reply longer than 1000 lines"), std::string::npos) << r.error;
}

TEST(reply_stream, replies_piling_up_unread_are_dropped_and_said_so) {
  reply_stream s;
  const std::string chunk(64 * 1024, 'x');
  for (std::size_t fed = 0; fed <= reply_stream::max_unread; fed += chunk.size())
    s.feed(chunk);
  EXPECT_LE(s.buffered(), reply_stream::max_unread);
  auto r = s.next();
  ASSERT_EQ(r.st, reply_stream::status::malformed);
  EXPECT_NE(r.error.find("octets of replies arrived unread"), std::string::npos) << r.error;
  s.feed("250 ok\r\n");
  EXPECT_EQ(s.next().st, reply_stream::status::reply);
}

TEST(reply_stream, discard_drops_buffered_plaintext) {
  reply_stream s;
  s.feed("220 ready\r\n250 injected\r\n250-half");
  ASSERT_EQ(s.next().st, reply_stream::status::reply);
  EXPECT_GT(s.discard(), 0u);
  EXPECT_EQ(s.next().st, reply_stream::status::need_more);
  s.feed("250 fresh\r\n");
  auto r = s.next();
  ASSERT_EQ(r.st, reply_stream::status::reply);
  EXPECT_EQ(r.reply.lines, std::vector<std::string>{"fresh"});
}

// Nor is what comes after the handshake the rest of an over-long line that went on before it.
TEST(reply_stream, discard_ends_an_over_long_line) {
  reply_stream s(100);
  s.feed("250 " + std::string(200, 'x'));
  EXPECT_EQ(s.next().st, reply_stream::status::need_more);
  s.discard();
  EXPECT_FALSE(s.overlong_to_report());
  s.feed("250 fresh\r\n");
  EXPECT_EQ(s.next().st, reply_stream::status::reply);
}

TEST(printable, escapes_line_endings_and_controls) {
  EXPECT_EQ(printable(std::string("a\r\nb\n\0.\r", 8)), "a\\r\\nb\\n\\x00.\\r");
  EXPECT_EQ(printable(std::string(10, 'z'), 4), "zzzz... (10 octets)");
  // UTF-8 text stays; octets that are not UTF-8, C1 and bidirectional controls are escaped.
  EXPECT_EQ(printable("a\xe2\x80\xae"
                      "b\xe2\x81\xa6"
                      "c\xe2\x80\x94"),
            "a\\xe2\\x80\\xaeb\\xe2\\x81\\xa6c\xe2\x80\x94");
  EXPECT_EQ(printable("caf\xc3\xa9 \xff\xe2\x82 \xc2\x9b[2J"),
            "caf\xc3\xa9 \\xff\\xe2\\x82 \\xc2\\x9b[2J");
}

TEST(reply_stream, unfinished_says_what_a_close_cut_short) {
  reply_stream s;
  EXPECT_EQ(s.unfinished(), "");
  s.feed("220 hi");
  EXPECT_EQ(s.next().st, reply_stream::status::need_more);
  EXPECT_EQ(s.unfinished(), "'220 hi' without its line end");
  s.feed("\r\n250-first\r\n250-SIZE\r");
  EXPECT_EQ(s.next().st, reply_stream::status::reply);
  EXPECT_EQ(s.next().st, reply_stream::status::need_more);
  EXPECT_EQ(s.unfinished(), "1 line of a multi-line reply and '250-SIZE\\r' without its line end");
  s.feed("\n250 ok\r\n");
  EXPECT_EQ(s.next().st, reply_stream::status::reply);
  EXPECT_EQ(s.unfinished(), "");
}

}  // namespace
}  // namespace smtpfault::proto
