// The HTTP listener of the control API: its own I/O thread, one coroutine per connection
// (Beast), keep-alive, a bounded request size and a deadline on every read and write.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "control/api_context.hpp"

namespace smtpfault::control {

// Destroy it after the SMTP server's threads have stopped: a long-poll in progress is
// subscribed to the message store until the API's io_context is destroyed.
class api_server {
 public:
  explicit api_server(api_context ctx);
  ~api_server();

  // Binds; throws std::runtime_error naming the address on failure.
  void bind(const boost::asio::ip::tcp::endpoint& ep);
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Starts the API thread.
  void start();
  // Stops accepting, drops open connections (a pending long-poll included) and joins the thread.
  void stop();

 private:
  api_context ctx_;
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  std::thread thread_;
};

}  // namespace smtpfault::control
