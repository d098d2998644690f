// What a message asks of the server before it is sent: RFC 6152 ("a client MUST NOT send 8-bit
// data to a server that does not offer 8BITMIME") and RFC 6532 (UTF-8 in header fields only
// with SMTPUTF8).
#include "proto/message_needs.hpp"

#include <gtest/gtest.h>

namespace smtpfault::proto {
namespace {

TEST(needs_of, a_7bit_message_needs_nothing) {
  const auto n = needs_of("Subject: plain\r\n\r\nascii only\r\n");
  EXPECT_FALSE(n.eight_bit);
  EXPECT_FALSE(n.non_ascii_header);
}

TEST(needs_of, an_8bit_body_needs_8bitmime_only) {
  const auto n = needs_of("Subject: plain\r\n\r\nna\xc3\xafve\r\n");
  EXPECT_TRUE(n.eight_bit);
  EXPECT_FALSE(n.non_ascii_header);
}

TEST(needs_of, a_utf8_header_field_is_named) {
  const auto n = needs_of("From: a@x.test\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n");
  EXPECT_TRUE(n.eight_bit);
  EXPECT_EQ(n.non_ascii_header, "Subject");
}

TEST(needs_of, a_folded_field_is_named_by_its_first_line) {
  const auto n = needs_of("To: a@x.test\r\nSubject: one\r\n two\r\n\tcaf\xc3\xa9\r\n\r\nbody\r\n");
  EXPECT_EQ(n.non_ascii_header, "Subject");
  // A line that is no field is named whole.
  EXPECT_EQ(needs_of("X: a\r\ncaf\xc3\xa9 no colon\r\nY: b\r\n\r\n").non_ascii_header,
            "caf\xc3\xa9 no colon");
}

TEST(needs_of, the_header_ends_where_the_mime_reader_ends_it) {
  // Without its empty line, the text begins at the first line that is no field.
  EXPECT_FALSE(needs_of("Subject: x\r\ncaf\xc3\xa9 is text\r\n").non_ascii_header);
  // An empty header section: all of it is the body.
  EXPECT_FALSE(needs_of("\r\ncaf\xc3\xa9: no field\r\n").non_ascii_header);
  // No body: all of it is the header.
  EXPECT_EQ(needs_of("X-Latin: \xe9t\xe9").non_ascii_header, "X-Latin");
}

// Read 32 octets at a time, then eight: the first 8-bit octet is found at every place in a
// block, in a word after the blocks, and in the tail shorter than a word.
TEST(first_8bit, finds_the_first_at_any_offset) {
  for (std::size_t length : {0u, 1u, 7u, 8u, 9u, 17u, 31u, 32u, 33u, 64u, 75u, 103u}) {
    const std::string ascii(length, 'a');
    EXPECT_EQ(first_8bit(ascii), std::string_view::npos) << length;
    for (std::size_t at = 0; at < length; ++at) {
      std::string text = ascii;
      text[at] = '\xe9';
      if (at + 1 < length) text[length - 1] = '\xff';
      EXPECT_EQ(first_8bit(text), at) << length << " " << at;
    }
  }
}

}  // namespace
}  // namespace smtpfault::proto
