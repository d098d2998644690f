// Telling a TLS record from text in what a server sent first (RFC 8446 5.1), for the hint that
// a port takes implicit TLS.
#include "proto/tls_record.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace smtpfault::proto {
namespace {

using namespace std::string_view_literals;

TEST(could_be_tls, nothing_at_all_or_a_record_header) {
  EXPECT_TRUE(could_be_tls(""));
  EXPECT_TRUE(could_be_tls("\x15\x03"sv));  // an alert
  EXPECT_TRUE(could_be_tls("\x16\x03"sv));  // a handshake
  EXPECT_TRUE(could_be_tls("\x17"sv));      // one octet so far
}

TEST(could_be_tls, text_is_not) {
  EXPECT_FALSE(could_be_tls("22"));  // "220 ..."
  EXPECT_FALSE(could_be_tls("HT"));  // "HTTP/1.1 400 ..."
  EXPECT_FALSE(could_be_tls("\x16\x41"sv));
  EXPECT_FALSE(could_be_tls("\x00\x03"sv));
}

}  // namespace
}  // namespace smtpfault::proto
