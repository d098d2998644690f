#include "net/port_claim.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "net/transport.hpp"

namespace smtpfault::net {

port_claim::port_claim(const boost::asio::ip::tcp::endpoint& ep) {
  // A leading NUL puts the name in the abstract namespace: no file, nothing to clean up.
  const std::string name = std::string(1, '\0') + "smtpfault listen " + endpoint_text(ep);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (name.size() > sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, name.data(), name.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    taken_ = errno == EADDRINUSE;
    ::close(fd);
    return;
  }
  fd_ = fd;
}

port_claim::~port_claim() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace smtpfault::net
