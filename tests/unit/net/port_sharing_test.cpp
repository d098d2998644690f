#include "net/port_sharing.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace smtpfault::net {
namespace {

const char* const sample =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode\n"
    "   0: 0100007F:0CE4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "111 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:0CE4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "222 1 0000000000000000 100 0 0 10 0\n"
    "   2: 0200007F:0CE4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "333 1 0000000000000000 100 0 0 10 0\n"
    "   3: 0100007F:0CE4 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 "
    "444 1 0000000000000000 20 4 30 10 -1\n";

TEST(PortSharing, TheListenersHoldingTheLowestInodeStay) {
  EXPECT_TRUE(other_listener_stays(sample, {222}));
  EXPECT_FALSE(other_listener_stays(sample, {111}));  // 222 is the one to give up
  EXPECT_FALSE(other_listener_stays(sample, {111, 222}));
}

TEST(PortSharing, IgnoresOtherAddressesAndConnectedSockets) {
  EXPECT_FALSE(other_listener_stays(sample, {333}));  // 127.0.0.2: a port of its own
  EXPECT_FALSE(other_listener_stays(sample, {444}));  // not listening
  EXPECT_FALSE(other_listener_stays(sample, {}));
  EXPECT_FALSE(other_listener_stays("", {222}));
}

// A real SO_REUSEPORT listener on loopback, as another server would open it.
int reuse_port_listener(in_port_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = port;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(PortSharing, SeesAListenerThatJoinedThePortInThisNetworkNamespace) {
  int mine = reuse_port_listener(0);
  ASSERT_GE(mine, 0);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(mine, reinterpret_cast<sockaddr*>(&a), &len);
  EXPECT_FALSE(port_taken_by_other_listener({mine}));
  int other = reuse_port_listener(a.sin_port);
  ASSERT_GE(other, 0);
  // Exactly one of the two groups gives up.
  EXPECT_NE(port_taken_by_other_listener({mine}), port_taken_by_other_listener({other}));
  EXPECT_FALSE(port_taken_by_other_listener({mine, other}));
  close(other);
  close(mine);
}

}  // namespace
}  // namespace smtpfault::net
