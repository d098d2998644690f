#include "proto/reply.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/line_reader.hpp"

namespace smtpfault::proto {
namespace {

TEST(reply_wire, single_line_with_enhanced_code) {
  EXPECT_EQ(to_wire(reply(250, "2.1.0", "Ok")), "250 2.1.0 Ok\r\n");
}

TEST(reply_wire, enhanced_code_can_be_left_out) {
  EXPECT_EQ(to_wire(reply(250, "2.1.0", "Ok"), false), "250 Ok\r\n");
  EXPECT_EQ(to_wire(reply(220, "", "ready")), "220 ready\r\n");
}

// RFC 5321 4.2.1: every line but the last has "-" after the code, the last one SP.
TEST(reply_wire, multi_line) {
  reply r(250, "", std::vector<std::string>{"mx.example", "PIPELINING", "SIZE 1000"});
  EXPECT_EQ(to_wire(r), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
  reply e(550, "5.7.1", std::vector<std::string>{"first", "second"});
  EXPECT_EQ(to_wire(e), "550-5.7.1 first\r\n550 5.7.1 second\r\n");
}

TEST(reply_wire, empty_text) {
  EXPECT_EQ(to_wire(reply(250, "", "")), "250\r\n");
  EXPECT_EQ(to_wire(reply(250, "2.0.0", "")), "250 2.0.0\r\n");
  reply r(250, "", std::vector<std::string>{"", ""});
  EXPECT_EQ(to_wire(r), "250-\r\n250\r\n");
  reply none(354, "", std::vector<std::string>{});
  EXPECT_EQ(to_wire(none), "354\r\n");
  EXPECT_EQ(to_wire(reply(334, "", "")), "334 \r\n");      // RFC 4954: "334" SP, even when empty
  EXPECT_EQ(to_wire(reply(99, "", "odd")), "99 odd\r\n");  // scenarios may send any number
}

TEST(reply_wire, append_keeps_existing_output) {
  std::string out = "250 first\r\n";
  append_wire(out, reply(221, "2.0.0", "Bye"));
  EXPECT_EQ(out, "250 first\r\n221 2.0.0 Bye\r\n");
}

TEST(reply_kinds, classify) {
  EXPECT_TRUE(reply(354, "", "").positive());
  EXPECT_TRUE(reply(451, "", "").transient());
  EXPECT_TRUE(reply(554, "", "").permanent());
  EXPECT_FALSE(reply(250, "", "").transient());
}

TEST(reply_reader, single_line) {
  reply_reader rr;
  EXPECT_EQ(rr.feed_line("250 2.1.5 Ok"), reply_reader::status::complete);
  reply r = rr.take();
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.enhanced, "2.1.5");
  EXPECT_EQ(r.lines, std::vector<std::string>{"Ok"});
}

TEST(reply_reader, multi_line_without_enhanced) {
  reply_reader rr;
  EXPECT_EQ(rr.feed_line("250-mx.example"), reply_reader::status::need_more);
  EXPECT_EQ(rr.feed_line("250-SIZE 1000"), reply_reader::status::need_more);
  EXPECT_EQ(rr.feed_line("250 8BITMIME"), reply_reader::status::complete);
  reply r = rr.take();
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.lines, (std::vector<std::string>{"mx.example", "SIZE 1000", "8BITMIME"}));
}

TEST(reply_reader, code_only_lines) {
  reply_reader rr;
  EXPECT_EQ(rr.feed_line("250-"), reply_reader::status::need_more);
  EXPECT_EQ(rr.feed_line("250"), reply_reader::status::complete);
  EXPECT_EQ(rr.take().lines, (std::vector<std::string>{"", ""}));
}

TEST(reply_reader, enhanced_code_stripped_from_every_line) {
  reply_reader rr;
  rr.feed_line("550-5.7.1 first");
  rr.feed_line("550-5.7.1");
  rr.feed_line("550 second without code");
  reply r = rr.take();
  EXPECT_EQ(r.enhanced, "5.7.1");
  EXPECT_EQ(r.lines, (std::vector<std::string>{"first", "", "second without code"}));
}

TEST(reply_reader, enhanced_class_must_match_code) {
  reply_reader rr;
  rr.feed_line("250 5.0.0 odd");
  reply r = rr.take();
  EXPECT_EQ(r.enhanced, "");
  EXPECT_EQ(r.lines, std::vector<std::string>{"5.0.0 odd"});
}

TEST(reply_reader, not_an_enhanced_code) {
  for (const char* line : {"250 2.0 Ok", "250 2.0.0000 Ok", "250 2.0.0Ok", "250 2..0 Ok"}) {
    reply_reader rr;
    ASSERT_EQ(rr.feed_line(line), reply_reader::status::complete) << line;
    EXPECT_EQ(rr.take().enhanced, "") << line;
  }
}

TEST(reply_reader, mixed_codes_are_malformed) {
  reply_reader rr;
  EXPECT_EQ(rr.feed_line("250-first"), reply_reader::status::need_more);
  EXPECT_EQ(rr.feed_line("251 second"), reply_reader::status::malformed);
  EXPECT_NE(rr.error().find("251"), std::string::npos);
  rr.take();
  EXPECT_EQ(rr.feed_line("221 Bye"), reply_reader::status::complete);
  EXPECT_EQ(rr.take().code, 221);
  EXPECT_TRUE(rr.error().empty());
}

TEST(reply_reader, malformed_lines) {
  for (const char* line : {"", "25", "2500 x", "abc def", "250x", "650 nope", "050 nope", "25 0"}) {
    reply_reader rr;
    EXPECT_EQ(rr.feed_line(line), reply_reader::status::malformed) << '"' << line << '"';
    EXPECT_FALSE(rr.error().empty());
  }
}

// Client side as a whole: bytes -> line_reader -> reply_reader.
std::vector<reply> read_replies(const std::vector<std::string>& pieces) {
  line_reader lines(512);
  reply_reader rr;
  std::vector<reply> out;
  std::string buffer;
  for (const auto& p : pieces) {
    buffer += p;
    while (true) {
      auto r = lines.next(buffer);
      if (r.st == line_reader::status::line &&
          rr.feed_line(r.line) != reply_reader::status::need_more) {
        out.push_back(rr.take());
      }
      buffer.erase(0, r.consumed);
      if (r.st == line_reader::status::need_more) break;
    }
  }
  return out;
}

bool same(const reply& a, const reply& b) {
  return a.code == b.code && a.enhanced == b.enhanced && a.lines == b.lines;
}

TEST(reply_reader, round_trip_split_at_every_offset) {
  std::vector<reply> replies{
      reply(220, "", "mx ESMTP"),
      reply(250, "", std::vector<std::string>{"mx", "PIPELINING", "CHUNKING"}),
      reply(250, "2.1.0", "Sender ok"),
      reply(550, "5.1.1", std::vector<std::string>{"no such user", "really"}),
      reply(354, "", ""),
  };
  std::string wire;
  for (const auto& r : replies)
    append_wire(wire, r);
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    auto got = read_replies({wire.substr(0, cut), wire.substr(cut)});
    ASSERT_EQ(got.size(), replies.size()) << "cut " << cut;
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(same(got[i], replies[i])) << "cut " << cut << " reply " << i;
    }
  }
}

TEST(reply_wire, enhanced_code_shape) {
  for (const char* good : {"2.0.0", "4.7.1", "5.1.10", "5.123.456"})
    EXPECT_TRUE(is_enhanced_code(good)) << good;
  for (const char* bad : {"", "banana", "4.7", "4.7.1 ", "3.0.0", "4.7.1234", "4..1", "45.1.1"})
    EXPECT_FALSE(is_enhanced_code(bad)) << bad;
}

TEST(ehlo_offers, whole_keywords_after_the_greeting_line) {
  const reply ehlo(250, "",
                   std::vector<std::string>{"STARTTLS.example greets you", "SIZE 1000", "smtputf8",
                                            "8BITMIMEX"});
  EXPECT_TRUE(ehlo_offers(ehlo, "SIZE"));
  EXPECT_TRUE(ehlo_offers(ehlo, "SMTPUTF8"));   // keywords are case-insensitive
  EXPECT_FALSE(ehlo_offers(ehlo, "8BITMIME"));  // another keyword that starts alike
  EXPECT_FALSE(ehlo_offers(ehlo, "STARTTLS"));  // the first line is the server's name
}

}  // namespace
}  // namespace smtpfault::proto
