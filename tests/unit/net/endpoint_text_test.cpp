#include "net/transport.hpp"

#include <gtest/gtest.h>

namespace smtpfault::net {
namespace {

tcp::endpoint at(const char* address, unsigned short port) {
  return {asio::ip::make_address(address), port};
}

TEST(EndpointText, WritesV4AddressesAndPorts) {
  EXPECT_EQ(endpoint_text(at("127.0.0.1", 2525)), "127.0.0.1:2525");
  EXPECT_EQ(endpoint_text(at("0.0.0.0", 0)), "0.0.0.0:0");
  EXPECT_EQ(endpoint_text(at("255.255.255.255", 65535)), "255.255.255.255:65535");
  EXPECT_EQ(endpoint_text(at("10.200.3.40", 587)), "10.200.3.40:587");
}

TEST(EndpointText, BracketsV6Addresses) {
  EXPECT_EQ(endpoint_text(at("::1", 25)), "[::1]:25");
  EXPECT_EQ(endpoint_text(at("2001:db8::a:1", 465)), "[2001:db8::a:1]:465");
}

TEST(EndpointText, ShowsV4MappedAddressesAsV4) {
  EXPECT_EQ(endpoint_text(at("::ffff:192.0.2.7", 40000)), "192.0.2.7:40000");
}

}  // namespace
}  // namespace smtpfault::net
