#include "proto/data_reader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace smtpfault::proto {
namespace {

using namespace std::string_literals;

struct data_outcome {
  std::string body;
  bool done = false;
  std::size_t consumed = 0;  // octets of the input that belonged to the data phase
  std::vector<std::pair<anomaly_kind, std::uint64_t>> anomalies;
  std::uint64_t anomaly_count = 0;
  std::uint64_t body_size = 0;
  bool size_exceeded = false;
  bool line_too_long = false;
  bool operator==(const data_outcome&) const = default;
};

// Feeds the pieces in order, stopping at the end of the data like the server does.
data_outcome feed(const std::vector<std::string_view>& pieces, std::size_t max_line = 1000,
                  std::uint64_t max_size = 0) {
  data_reader reader(max_line, max_size);
  data_outcome out;
  for (auto piece : pieces) {
    auto r = reader.feed(piece, out.body);
    out.consumed += r.consumed;
    if (r.done) {
      out.done = true;
      break;
    }
    EXPECT_EQ(r.consumed, piece.size()) << "an unfinished reader consumes everything";
  }
  for (const auto& a : reader.anomalies())
    out.anomalies.emplace_back(a.kind, a.offset);
  out.anomaly_count = reader.anomaly_count();
  out.body_size = reader.body_size();
  out.size_exceeded = reader.size_exceeded();
  out.line_too_long = reader.line_too_long();
  return out;
}

data_outcome feed_whole(std::string_view input, std::size_t max_line = 1000,
                        std::uint64_t max_size = 0) {
  return feed({input}, max_line, max_size);
}

// The result must not depend on how TCP cut the stream: two pieces at every offset, and one
// octet at a time.
void expect_data_split_invariant(std::string_view input, std::size_t max_line = 1000,
                                 std::uint64_t max_size = 0) {
  data_outcome whole = feed_whole(input, max_line, max_size);
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    data_outcome split = feed({input.substr(0, cut), input.substr(cut)}, max_line, max_size);
    ASSERT_EQ(split, whole) << "cut at " << cut;
  }
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i)
    bytes.push_back(input.substr(i, 1));
  ASSERT_EQ(feed(bytes, max_line, max_size), whole);
}

using ak = anomaly_kind;

TEST(data_reader, empty_message) {
  auto out = feed_whole(".\r\n");
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.consumed, 3u);
  EXPECT_EQ(out.body, "");
  EXPECT_EQ(out.body_size, 0u);
}

TEST(data_reader, simple_message_keeps_final_crlf) {
  auto out = feed_whole("Subject: hi\r\n\r\nbody\r\n.\r\n");
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.body, "Subject: hi\r\n\r\nbody\r\n");
  EXPECT_TRUE(out.anomalies.empty());
}

TEST(data_reader, stops_at_terminator_leaving_pipelined_commands) {
  std::string input = "a\r\n.\r\nQUIT\r\n";
  auto out = feed_whole(input);
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.consumed, 6u);
  EXPECT_EQ(out.body, "a\r\n");
  expect_data_split_invariant(input);
}

// RFC 5321 4.5.2: "If the first character is a period and there are other characters on the
// line, the first character is deleted."
TEST(data_reader, dot_unstuffing) {
  auto out = feed_whole("..\r\n...x\r\n.y\r\na.b\r\n.\r\n");
  EXPECT_EQ(out.body, ".\r\n..x\r\ny\r\na.b\r\n");
  EXPECT_EQ(out.body_size, out.body.size());
  expect_data_split_invariant("..\r\n...x\r\n.y\r\na.b\r\n.\r\n");
}

// RFC 5321 4.5.2: the client doubles a leading dot; a single one before other text is a client
// that forgot, recorded so expectations can point at it.
TEST(data_reader, unstuffed_leading_dot_is_recorded) {
  auto out = feed_whole("ok\r\n.oops\r\n..fine\r\n.\r\n");
  EXPECT_EQ(out.body, "ok\r\noops\r\n.fine\r\n");
  ASSERT_EQ(out.anomalies.size(), 1u);
  EXPECT_EQ(out.anomalies[0].first, ak::unstuffed_dot);
  EXPECT_EQ(out.anomalies[0].second, 4u);
  expect_data_split_invariant("ok\r\n.oops\r\n..fine\r\n.\r\n");
}

TEST(data_reader, first_line_counts_as_line_start) {
  EXPECT_EQ(feed_whole("..x\r\n.\r\n").body, ".x\r\n");
}

TEST(data_reader, incomplete_terminator_waits) {
  data_reader reader(1000, 0);
  std::string body;
  auto r = reader.feed("abc\r\n.\r", body);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.consumed, 7u);
  EXPECT_EQ(body, "abc\r\n");
  r = reader.feed("\nMAIL", body);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 1u);
  // Further input is not data any more.
  r = reader.feed("more", body);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(body, "abc\r\n");
}

// SMTP smuggling: each of these must stay inside the message and be reported.
struct smuggle_case {
  const char* name;
  std::string input;  // message text, always followed by a real terminator
  std::string body;
  std::vector<std::pair<anomaly_kind, std::uint64_t>> anomalies;
};

std::vector<smuggle_case> smuggle_cases() {
  return {
      {"lf_dot_lf", "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", {{ak::bare_lf, 1}, {ak::bare_lf, 3}}},
      {"cr_dot_cr", "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", {{ak::bare_cr, 1}, {ak::bare_cr, 3}}},
      {"lf_dot_crlf", "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", {{ak::bare_lf, 1}}},
      // After a real CRLF the dot is at a line start; the line is not "." alone, so the dot is
      // dropped as stuffing and the bare ending is kept.
      {"crlf_dot_lf",
       "a\r\n.\nb\r\n.\r\n",
       "a\r\n\nb\r\n",
       {{ak::unstuffed_dot, 3}, {ak::bare_lf, 4}}},
      {"crlf_dot_cr", "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", {{ak::bare_cr, 4}}},
      {"crlf_nul_dot_crlf", "a\r\n\0.\r\nb\r\n.\r\n"s, "a\r\n\0.\r\nb\r\n"s, {{ak::nul, 3}}},
      {"crlf_dot_cr_cr_lf", "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", {{ak::bare_cr, 4}}},
  };
}

TEST(data_reader, smuggling_variants_do_not_end_data) {
  for (const auto& c : smuggle_cases()) {
    SCOPED_TRACE(c.name);
    auto out = feed_whole(c.input);
    EXPECT_TRUE(out.done);
    EXPECT_EQ(out.consumed, c.input.size());
    EXPECT_EQ(out.body, c.body);
    EXPECT_EQ(out.anomalies, c.anomalies);
    expect_data_split_invariant(c.input);
  }
}

TEST(data_reader, smuggling_variants_alone_never_finish) {
  for (std::string s : {"\n.\n"s, "\r.\r"s, "\n.\r\n"s, "\r\n.\n"s, "\r\n.\r"s, "\r\n\0.\r\n"s}) {
    auto out = feed_whole("x" + s + "y");
    EXPECT_FALSE(out.done) << testing::PrintToString(s);
    EXPECT_FALSE(out.anomalies.empty()) << testing::PrintToString(s);
  }
}

TEST(data_reader, bare_cr_at_end_of_input_is_decided_later) {
  data_reader reader(1000, 0);
  std::string body;
  reader.feed("a\r", body);
  EXPECT_TRUE(reader.anomalies().empty());
  reader.feed("b", body);
  ASSERT_EQ(reader.anomalies().size(), 1u);
  EXPECT_EQ(reader.anomalies()[0].kind, ak::bare_cr);
  EXPECT_EQ(reader.anomalies()[0].offset, 1u);
}

TEST(data_reader, anomalies_are_capped_but_counted) {
  std::string input(200, '\n');
  input += "\r\n.\r\n";
  auto out = feed_whole(input, 0);
  EXPECT_EQ(out.anomalies.size(), data_reader::max_anomalies);
  EXPECT_EQ(out.anomaly_count, 200u);
  EXPECT_EQ(out.body, input.substr(0, 202));
}

// RFC 5321 4.5.3.1.6: "The maximum total length of a text line including the <CRLF> is 1000
// octets (not counting the leading dot duplicated for transparency)."
TEST(data_reader, text_line_1000_is_accepted) {
  auto out = feed_whole(std::string(998, 'x') + "\r\n.\r\n");
  EXPECT_FALSE(out.line_too_long);
  EXPECT_TRUE(out.anomalies.empty());
}

TEST(data_reader, text_line_1001_is_too_long) {
  std::string input = std::string(999, 'x') + "\r\nshort\r\n.\r\n";
  auto out = feed_whole(input);
  EXPECT_TRUE(out.done);
  EXPECT_TRUE(out.line_too_long);
  ASSERT_EQ(out.anomalies.size(), 1u);
  EXPECT_EQ(out.anomalies[0].first, ak::long_line);
  EXPECT_EQ(out.anomalies[0].second, 1000u);  // the octet that crossed the limit (the LF)
  EXPECT_EQ(out.body, input.substr(0, input.size() - 3));
}

TEST(data_reader, stuffed_dot_does_not_count_towards_line_length) {
  auto out = feed_whole("." + std::string(998, '.') + "\r\n.\r\n");
  EXPECT_FALSE(out.line_too_long);
  EXPECT_EQ(out.body.size(), 1000u);
}

TEST(data_reader, one_long_line_anomaly_per_line) {
  std::string l = std::string(3000, 'x') + "\r\n";
  auto out = feed_whole(l + l + "ok\r\n.\r\n");
  ASSERT_EQ(out.anomalies.size(), 2u);
  EXPECT_EQ(out.anomalies[0], std::make_pair(ak::long_line, std::uint64_t{1000}));
  EXPECT_EQ(out.anomalies[1], std::make_pair(ak::long_line, std::uint64_t{3002 + 1000}));
}

TEST(data_reader, bare_lf_does_not_end_a_line_for_length) {
  // Strict framing: only CRLF ends a text line, so LF-only text is one long line.
  std::string input;
  for (int i = 0; i < 20; ++i)
    input += std::string(60, 'x') + "\n";
  auto out = feed_whole(input + "\r\n.\r\n");
  EXPECT_TRUE(out.line_too_long);
}

TEST(data_reader, zero_line_limit_means_unlimited) {
  auto out = feed_whole(std::string(50000, 'x') + "\r\n.\r\n", 0);
  EXPECT_FALSE(out.line_too_long);
}

TEST(data_reader, size_limit_truncates_but_reads_to_terminator) {
  std::string input = "0123456789\r\n..abc\r\n.\r\nQUIT\r\n";
  auto out = feed_whole(input, 1000, 8);
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.consumed, input.size() - 6);
  EXPECT_TRUE(out.size_exceeded);
  EXPECT_EQ(out.body, "01234567");
  EXPECT_EQ(out.body_size, 18u);  // unstuffed octets: 12 + 6
  expect_data_split_invariant(input, 1000, 8);
}

TEST(data_reader, size_limit_exactly_reached_is_fine) {
  auto out = feed_whole("abc\r\n.\r\n", 1000, 5);
  EXPECT_FALSE(out.size_exceeded);
  EXPECT_EQ(out.body, "abc\r\n");
}

// Lines the fast path cannot take (NULs, bare CRs, no LF yet) must not make it search the rest
// of the input again after every octet: 1 MiB would then cost about 500 billion comparisons.
TEST(data_reader, hostile_lines_are_searched_once) {
  for (std::string unit : {"\0"s, "x\0"s, "\rx"s, "a\rb\n"s}) {
    std::string input;
    while (input.size() < 1024 * 1024)
      input += unit;
    data_reader reader(1000, 0);
    std::string body;
    auto r = reader.feed(input, body);
    EXPECT_FALSE(r.done);
    EXPECT_EQ(r.consumed, input.size());
    EXPECT_LE(reader.octets_searched(), input.size() + 1) << "unit of " << unit.size();
  }
}

TEST(data_reader, anomaly_names) {
  EXPECT_STREQ(anomaly_name(ak::bare_cr), "bare_cr");
  EXPECT_STREQ(anomaly_name(ak::bare_lf), "bare_lf");
  EXPECT_STREQ(anomaly_name(ak::nul), "nul");
  EXPECT_STREQ(anomaly_name(ak::long_line), "long_line");
}

TEST(data_reader, large_message_in_odd_chunks) {
  std::string input, expected;
  for (int i = 0; i < 2000; ++i) {
    std::string line = (i % 7 == 0 ? "." : "") + std::string(48, char('a' + i % 26));
    input += (line[0] == '.' ? "." : "") + line + "\r\n";
    expected += line + "\r\n";
  }
  input += ".\r\n";
  std::vector<std::string_view> pieces;
  std::string_view rest = input;
  for (std::size_t n = 1; !rest.empty(); n = n * 3 % 1021 + 1) {
    pieces.push_back(rest.substr(0, n));
    rest.remove_prefix(std::min(n, rest.size()));
  }
  auto out = feed(pieces);
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.body, expected);
  EXPECT_EQ(out.consumed, input.size());
}

// A slow, line-based model of RFC 5321 4.5.2 with strict CRLF framing, written independently of
// the state machine: split at CRLF, "." alone ends, a leading dot is dropped, and every CR, LF
// or NUL left inside a line is an anomaly.
data_outcome model(std::string_view input, std::size_t max_line, std::uint64_t max_size) {
  data_outcome out;
  std::string body;
  std::size_t pos = 0;
  while (true) {
    std::size_t crlf = input.find("\r\n", pos);
    if (crlf == std::string_view::npos) break;
    std::string_view line = input.substr(pos, crlf - pos);
    if (line == ".") {
      out.done = true;
      out.consumed = crlf + 2;
      break;
    }
    std::size_t start = pos;
    if (!line.empty() && line[0] == '.') {
      if (line.size() > 1 && line[1] != '.' && line[1] != '\r') {
        out.anomalies.emplace_back(ak::unstuffed_dot, pos);
      }
      line.remove_prefix(1);
      ++start;
    }
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\r') out.anomalies.emplace_back(ak::bare_cr, start + i);
      if (line[i] == '\n') out.anomalies.emplace_back(ak::bare_lf, start + i);
      if (line[i] == '\0') out.anomalies.emplace_back(ak::nul, start + i);
    }
    if (max_line != 0 && line.size() + 2 > max_line) {
      out.line_too_long = true;
      out.anomalies.emplace_back(ak::long_line, start + max_line);
    }
    body += line;
    body += "\r\n";
    pos = crlf + 2;
  }
  out.anomaly_count = out.anomalies.size();
  out.body_size = body.size();
  out.size_exceeded = max_size != 0 && body.size() > max_size;
  out.body = max_size != 0 ? body.substr(0, max_size) : body;
  return out;
}

// Random streams over the interesting alphabet: the state machine agrees with the model, and
// splitting never changes the outcome.
TEST(data_reader, random_streams_match_model) {
  std::mt19937 rng(1321);
  const std::string alphabet = "\r\n.\0a"s;
  for (int round = 0; round < 2000; ++round) {
    std::string input;
    std::size_t len = rng() % 40;
    for (std::size_t i = 0; i < len; ++i)
      input += alphabet[rng() % alphabet.size()];
    input += "\r\n.\r\nNOOP\r\n";
    SCOPED_TRACE(testing::PrintToString(input));
    data_outcome got = feed_whole(input, 6, 12);
    data_outcome want = model(input, 6, 12);
    // Same-offset anomalies (a CR that is both bare and past the limit) may come in either order.
    std::sort(got.anomalies.begin(), got.anomalies.end());
    std::sort(want.anomalies.begin(), want.anomalies.end());
    ASSERT_EQ(got, want);
  }
}

// Random streams over the interesting alphabet: splitting must never change the outcome.
TEST(data_reader, random_streams_are_split_invariant) {
  std::mt19937 rng(20240607);
  const std::string alphabet = "\r\n.\0a"s;
  for (int round = 0; round < 60; ++round) {
    std::string input;
    std::size_t len = rng() % 40;
    for (std::size_t i = 0; i < len; ++i)
      input += alphabet[rng() % alphabet.size()];
    input += "\r\n.\r\n";
    SCOPED_TRACE(testing::PrintToString(input));
    expect_data_split_invariant(input, 6, 10);
  }
}

}  // namespace
}  // namespace smtpfault::proto
