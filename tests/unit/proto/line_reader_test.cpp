#include "proto/line_reader.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace smtpfault::proto {
namespace {

struct event {
  line_reader::status st;
  std::string line;
  bool bare_lf;
  bool operator==(const event&) const = default;
};

struct lines_outcome {
  std::vector<event> events;
  std::string leftover;          // bytes the caller still holds at the end
  std::size_t max_buffered = 0;  // the most the caller ever had to hold
};

// Plays the caller: appends each piece to its buffer, drops what the reader consumed, and keeps
// calling until the reader asks for more.
lines_outcome run(const std::vector<std::string>& pieces, std::size_t max_line) {
  line_reader reader(max_line);
  lines_outcome out;
  for (const auto& piece : pieces) {
    out.leftover += piece;
    while (true) {
      auto r = reader.next(out.leftover);
      if (r.st != line_reader::status::need_more) {
        out.events.push_back({r.st, std::string(r.line), r.bare_lf});
      }
      out.leftover.erase(0, r.consumed);
      if (r.st == line_reader::status::need_more) break;
    }
    out.max_buffered = std::max(out.max_buffered, out.leftover.size());
  }
  return out;
}

lines_outcome run_whole(const std::string& input, std::size_t max_line) {
  return run({input}, max_line);
}

// Every two-piece split must give the same lines as the whole input.
void expect_line_split_invariant(const std::string& input, std::size_t max_line) {
  lines_outcome whole = run_whole(input, max_line);
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    lines_outcome split = run({input.substr(0, cut), input.substr(cut)}, max_line);
    ASSERT_EQ(split.events, whole.events) << "cut at " << cut;
    ASSERT_EQ(split.leftover, whole.leftover) << "cut at " << cut;
  }
  std::vector<std::string> bytes;
  for (char c : input)
    bytes.emplace_back(1, c);
  lines_outcome single = run(bytes, max_line);
  EXPECT_EQ(single.events, whole.events);
}

using st = line_reader::status;

TEST(line_reader, splits_crlf_lines) {
  auto out = run_whole("EHLO a\r\nMAIL FROM:<>\r\n", 512);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0], (event{st::line, "EHLO a", false}));
  EXPECT_EQ(out.events[1], (event{st::line, "MAIL FROM:<>", false}));
  EXPECT_EQ(out.leftover, "");
}

TEST(line_reader, reports_bare_lf) {
  auto out = run_whole("NOOP\nQUIT\r\n", 512);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0], (event{st::line, "NOOP", true}));
  EXPECT_EQ(out.events[1], (event{st::line, "QUIT", false}));
}

TEST(line_reader, keeps_inner_cr_and_nul) {
  auto out = run_whole(std::string("NO\rOP\0x\r\r\n", 11), 512);
  ASSERT_EQ(out.events.size(), 1u);
  // Only the CR right before the LF belongs to the line ending.
  EXPECT_EQ(out.events[0].line, std::string("NO\rOP\0x\r", 8));
  EXPECT_FALSE(out.events[0].bare_lf);
}

TEST(line_reader, empty_lines) {
  auto out = run_whole("\r\n\n", 512);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0], (event{st::line, "", false}));
  EXPECT_EQ(out.events[1], (event{st::line, "", true}));
}

TEST(line_reader, incomplete_line_waits) {
  line_reader reader(512);
  auto r = reader.next("MAIL FROM:<a@b>\r");
  EXPECT_EQ(r.st, st::need_more);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_FALSE(reader.discarding());
}

// RFC 5321 4.5.3.1.4: "The maximum total length of a command line including the command word
// and the <CRLF> is 512 octets."
TEST(line_reader, command_line_512_is_accepted) {
  std::string line(510, 'x');
  auto out = run_whole(line + "\r\n", 512);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0], (event{st::line, line, false}));
}

TEST(line_reader, command_line_513_is_too_long) {
  auto out = run_whole(std::string(511, 'x') + "\r\nQUIT\r\n", 512);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].st, st::too_long);
  EXPECT_EQ(out.events[1], (event{st::line, "QUIT", false}));
}

TEST(line_reader, limit_counts_octets_on_the_wire_for_bare_lf) {
  auto ok = run_whole(std::string(511, 'x') + "\n", 512);
  ASSERT_EQ(ok.events.size(), 1u);
  EXPECT_EQ(ok.events[0].st, st::line);
  auto bad = run_whole(std::string(512, 'x') + "\n", 512);
  ASSERT_EQ(bad.events.size(), 1u);
  EXPECT_EQ(bad.events[0].st, st::too_long);
}

TEST(line_reader, too_long_line_is_discarded_as_it_arrives) {
  line_reader reader(16);
  auto r = reader.next(std::string(16, 'x'));
  EXPECT_EQ(r.st, st::need_more);
  EXPECT_EQ(r.consumed, 16u);
  EXPECT_TRUE(reader.discarding());
  r = reader.next(std::string(100, 'y'));
  EXPECT_EQ(r.st, st::need_more);
  EXPECT_EQ(r.consumed, 100u);
  r = reader.next("zz\r\nQUIT\r\n");
  EXPECT_EQ(r.st, st::too_long);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_FALSE(reader.discarding());
  r = reader.next("QUIT\r\n");
  EXPECT_EQ(r.st, st::line);
  EXPECT_EQ(r.line, "QUIT");
}

TEST(line_reader, endless_line_keeps_memory_bounded) {
  std::vector<std::string> pieces(1000, std::string(100, 'a'));
  pieces.push_back("\r\nNOOP\r\n");
  auto out = run(pieces, 512);
  EXPECT_LT(out.max_buffered, 512u);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].st, st::too_long);
  EXPECT_EQ(out.events[1], (event{st::line, "NOOP", false}));
}

TEST(line_reader, zero_means_unlimited) {
  std::string line(100000, 'q');
  auto out = run_whole(line + "\r\n", 0);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].line, line);
}

TEST(line_reader, set_max_line_applies_to_next_line) {
  line_reader reader(512);
  reader.set_max_line(12288);
  EXPECT_EQ(reader.max_line(), 12288u);
  std::string auth = "AUTH PLAIN " + std::string(5000, 'A');
  std::string input = auth + "\r\n";
  auto r = reader.next(input);
  EXPECT_EQ(r.st, st::line);
  EXPECT_TRUE(r.line == auth);
}

TEST(line_reader, split_at_every_offset) {
  expect_line_split_invariant("EHLO x\r\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\r\n\r\nDATA\r", 512);
  expect_line_split_invariant(
      std::string(20, 'x') + "\r\nshort\r\n" + std::string(30, 'y') + "\nok\n", 16);
  expect_line_split_invariant(
      std::string(15, 'x') + "\r\n" + std::string(14, 'y') + "\r\n" + std::string(16, 'z') + "\r\n",
      16);
  expect_line_split_invariant(std::string("\r\r\n\n\0\r\n", 7), 4);
}

}  // namespace
}  // namespace smtpfault::proto
