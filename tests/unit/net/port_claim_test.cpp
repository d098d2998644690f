#include "net/port_claim.hpp"

#include <gtest/gtest.h>

namespace smtpfault::net {
namespace {

port_claim claim_on(const char* address, unsigned short port) {
  return port_claim({boost::asio::ip::make_address(address), port});
}

TEST(PortClaim, OnlyOneHolderPerAddressAndPort) {
  {
    auto first = claim_on("127.0.0.1", 2999);
    EXPECT_FALSE(first.taken());
    EXPECT_TRUE(claim_on("127.0.0.1", 2999).taken());
    port_claim moved(std::move(first));  // still held, by the claim it moved to
    EXPECT_TRUE(claim_on("127.0.0.1", 2999).taken());
  }
  EXPECT_FALSE(claim_on("127.0.0.1", 2999).taken());  // released with its holder
}

// Ports of its own: ctest runs the cases of this file at the same time, and a claim is
// machine-wide (per network namespace).
TEST(PortClaim, OtherAddressesAndPortsAreOtherClaims) {
  auto held = claim_on("127.0.0.1", 2989);
  EXPECT_FALSE(claim_on("127.0.0.1", 2990).taken());
  EXPECT_FALSE(claim_on("127.0.0.2", 2989).taken());
  EXPECT_FALSE(claim_on("::1", 2989).taken());
  EXPECT_TRUE(claim_on("::ffff:127.0.0.1", 2989).taken());  // the same address, v4-mapped
}

}  // namespace
}  // namespace smtpfault::net
