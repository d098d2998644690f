#include "proto/bdat.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace smtpfault::proto {
namespace {

using namespace std::string_literals;

TEST(bdat_args, size_only) {
  auto a = parse_bdat_args("1234");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 1234u);
  EXPECT_FALSE(a->last);
}

// RFC 3030: bdat-cmd ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF
TEST(bdat_args, last_marker_any_case) {
  for (const char* arg : {"0 LAST", "0 last", "0 LaSt"}) {
    auto a = parse_bdat_args(arg);
    ASSERT_TRUE(a) << arg;
    EXPECT_EQ(a->size, 0u);
    EXPECT_TRUE(a->last);
  }
}

TEST(bdat_args, leading_zeros_are_digits) {
  auto a = parse_bdat_args("000000000000000000000000042");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 42u);
}

TEST(bdat_args, largest_63_bit_size) {
  auto a = parse_bdat_args("9223372036854775807 LAST");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 9223372036854775807u);
}

TEST(bdat_args, rejects_malformed) {
  for (const char* arg :
       {"", " 10", "+10", "-1", "10 ", "10  LAST", "10LAST", "10 LAST ", "10 LASTX", "10 LAS",
        "10 FIRST", "1e3", "0x10", "10\tLAST", "ten", "10 LAST x",
        "9223372036854775808",   // 2^63
        "18446744073709551616",  // 2^64, wraps a naive parser to 0
        "99999999999999999999999999"}) {
    EXPECT_FALSE(parse_bdat_args(arg)) << '"' << arg << '"';
  }
}

TEST(bdat_reader, reads_exactly_the_chunk) {
  bdat_reader reader(0);
  std::string body;
  reader.start_chunk(5);
  EXPECT_FALSE(reader.chunk_done());
  EXPECT_EQ(reader.feed("hel", body), 3u);
  EXPECT_EQ(reader.remaining(), 2u);
  EXPECT_EQ(reader.feed("lo\r\nQUIT\r\n", body), 2u);
  EXPECT_TRUE(reader.chunk_done());
  EXPECT_EQ(reader.feed("QUIT\r\n", body), 0u);
  EXPECT_EQ(body, "hello");
  EXPECT_EQ(reader.total(), 5u);
}

TEST(bdat_reader, no_dot_unstuffing) {
  bdat_reader reader(0);
  std::string body;
  std::string chunk = "..\r\n.\r\n";
  reader.start_chunk(chunk.size());
  reader.feed(chunk, body);
  EXPECT_EQ(body, chunk);
}

TEST(bdat_reader, zero_size_chunk_is_done_at_once) {
  bdat_reader reader(0);
  std::string body;
  reader.start_chunk(0);
  EXPECT_TRUE(reader.chunk_done());
  EXPECT_EQ(reader.feed("abc", body), 0u);
}

TEST(bdat_reader, size_limit_counts_but_does_not_keep) {
  bdat_reader reader(6);
  std::string body;
  reader.start_chunk(4);
  EXPECT_EQ(reader.feed("abcd", body), 4u);
  EXPECT_FALSE(reader.size_exceeded());
  reader.start_chunk(4);
  EXPECT_EQ(reader.feed("efgh", body), 4u);
  EXPECT_TRUE(reader.size_exceeded());
  EXPECT_EQ(body, "abcdef");
  EXPECT_EQ(reader.total(), 8u);
  reader.start_chunk(3);
  EXPECT_EQ(reader.feed("ijk", body), 3u);
  EXPECT_EQ(body, "abcdef");
  EXPECT_EQ(reader.total(), 11u);
}

TEST(bdat_reader, huge_announced_size_does_not_allocate) {
  bdat_reader reader(1024);
  std::string body;
  reader.start_chunk(9223372036854775807u);
  EXPECT_EQ(reader.feed(std::string(4096, 'x'), body), 4096u);
  EXPECT_EQ(body.size(), 1024u);
  EXPECT_EQ(reader.remaining(), 9223372036854775807u - 4096u);
  EXPECT_TRUE(reader.size_exceeded());
}

struct outcome {
  std::string body;
  std::size_t consumed = 0;
  std::uint64_t total = 0;
  bool exceeded = false;
  bool operator==(const outcome&) const = default;
};

outcome read_chunks(const std::vector<std::string>& pieces, std::uint64_t chunk,
                    std::uint64_t max_size) {
  bdat_reader reader(max_size);
  reader.start_chunk(chunk);
  outcome out;
  for (const auto& p : pieces)
    out.consumed += reader.feed(p, out.body);
  out.total = reader.total();
  out.exceeded = reader.size_exceeded();
  return out;
}

TEST(bdat_reader, split_at_every_offset) {
  const std::string input = "line one\r\n.\r\nline\0two\r\nNOOP\r\n"s;
  for (std::uint64_t max_size : {0u, 7u, 1000u}) {
    for (std::uint64_t chunk : {0u, 13u, 24u}) {
      outcome whole = read_chunks({input}, chunk, max_size);
      EXPECT_EQ(whole.consumed, chunk);
      for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        outcome split = read_chunks({input.substr(0, cut), input.substr(cut)}, chunk, max_size);
        ASSERT_EQ(split, whole) << "cut " << cut << " chunk " << chunk << " max " << max_size;
      }
    }
  }
}

}  // namespace
}  // namespace smtpfault::proto
