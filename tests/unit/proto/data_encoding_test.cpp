// RFC 5321 4.5.2 dot-stuffing and the end-of-data line, with each line ending a client scenario
// can choose (CRLF for correct clients; LF and CR for smuggling probes).
#include "proto/data_encoding.hpp"

#include <gtest/gtest.h>

#include "proto/data_reader.hpp"

namespace smtpfault::proto {
namespace {

TEST(encode_data, crlf_with_dot_stuffing) {
  EXPECT_EQ(encode_data("Subject: x\r\n\r\n.hidden\r\n..two\r\nend\r\n"),
            "Subject: x\r\n\r\n..hidden\r\n...two\r\nend\r\n.\r\n");
}

TEST(encode_data, any_input_ending_becomes_the_chosen_one) {
  EXPECT_EQ(encode_data("a\nb\rc\r\nd"), "a\r\nb\r\nc\r\nd\r\n.\r\n");
  EXPECT_EQ(encode_data("a\r\n.b", "\n"), "a\n..b\n.\n");
  EXPECT_EQ(encode_data("a\n.\n", "\r"), "a\r..\r.\r");
}

TEST(encode_data, empty_body_is_just_the_terminator) {
  EXPECT_EQ(encode_data(""), ".\r\n");
  EXPECT_EQ(encode_data("", "\n"), ".\n");
}

TEST(encode_data, a_lone_dot_line_never_ends_the_data_early) {
  EXPECT_EQ(encode_data(".\r\n"), "..\r\n.\r\n");
}

// What the server's reader gets back is the body with CRLF endings.
TEST(encode_data, round_trip_through_the_server_reader) {
  const std::string body = "From: a\r\n\r\n.\r\n..\r\n.x\r\nlast line\r\n";
  std::string wire = encode_data(body);
  data_reader reader(1000, 0);
  std::string out;
  auto r = reader.feed(wire, out);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, wire.size());
  EXPECT_EQ(out, body);
  EXPECT_TRUE(reader.anomalies().empty());
}

}  // namespace
}  // namespace smtpfault::proto
