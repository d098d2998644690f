// A claim on a TCP address and port among smtpfault servers in this network namespace.
// SO_REUSEPORT, which lets a server's I/O threads each listen on its port, also lets another
// process of the same user join that port; a free-port probe catches a server already there,
// but two servers starting at the same instant can both pass it. Only one can hold the claim:
// an abstract Unix socket named after the address and port, which the kernel names once per
// network namespace (as it does ports) and releases when the process ends, even by a crash.
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace smtpfault::net {

class port_claim {
 public:
  explicit port_claim(const boost::asio::ip::tcp::endpoint& ep);
  ~port_claim();
  port_claim(port_claim&& other) noexcept : fd_(other.fd_), taken_(other.taken_) { other.fd_ = -1; }
  port_claim(const port_claim&) = delete;
  port_claim& operator=(const port_claim&) = delete;
  port_claim& operator=(port_claim&&) = delete;

  // Another process holds it. (Where no Unix socket can be made at all, nothing is claimed
  // and nothing is taken: the free-port probe is then the only check.)
  bool taken() const { return taken_; }

 private:
  int fd_ = -1;
  bool taken_ = false;
};

}  // namespace smtpfault::net
