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

TEST(stuff_message, dots_are_stuffed_and_not_counted_in_the_size) {
  const auto m = stuff_message("Subject: x\r\n\r\n.one\r\n..two\r\n.\r\n");
  EXPECT_EQ(m.octets, "Subject: x\r\n\r\n..one\r\n...two\r\n..\r\n.\r\n");
  EXPECT_EQ(m.size, 30u);  // the message as given: what the server keeps after unstuffing
}

TEST(stuff_message, a_last_line_without_its_end_gets_one_and_it_counts) {
  EXPECT_EQ(stuff_message("a\r\nlast").octets, "a\r\nlast\r\n.\r\n");
  EXPECT_EQ(stuff_message("a\r\nlast").size, 9u);
  EXPECT_EQ(stuff_message("a\r\nlast\r").octets, "a\r\nlast\r\n.\r\n");
  EXPECT_EQ(stuff_message("a\r\nlast\r").size, 9u);
  EXPECT_EQ(stuff_message(".").octets, "..\r\n.\r\n");
  EXPECT_EQ(stuff_message(".").size, 3u);
}

TEST(stuff_message, a_bare_cr_inside_a_line_stays_and_an_empty_message_is_empty) {
  EXPECT_EQ(stuff_message("a\rb\r\n").octets, "a\rb\r\n.\r\n");
  EXPECT_EQ(stuff_message("").octets, ".\r\n");
  EXPECT_EQ(stuff_message("").size, 0u);
}

// What the server's reader keeps is as long as the size says.
TEST(stuff_message, the_size_is_what_the_server_reader_keeps) {
  for (std::string_view message : {"x", ".\r\n..", "a\r\n.b\r", "\r\n.\r\n.\r\nend"}) {
    const auto m = stuff_message(message);
    data_reader reader(1000, 0);
    std::string out;
    EXPECT_TRUE(reader.feed(m.octets, out).done) << message;
    EXPECT_EQ(out.size(), m.size) << message;
  }
}

}  // namespace
}  // namespace smtpfault::proto
