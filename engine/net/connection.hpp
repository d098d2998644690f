// Drives one server_session over one transport: the only place where session actions meet
// sockets. One coroutine per connection; a single watchdog timer enforces every deadline.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/server.hpp"
#include "net/transport.hpp"
#include "session/server_session.hpp"

namespace smtpfault::net {

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(server& srv, tcp::socket socket, bool implicit_tls, std::string id);

  asio::awaitable<void> run(bool over_cap);
  // Asks the session to end with 421 4.3.2; runs on the connection's thread.
  void shutdown();

 private:
  using steady = std::chrono::steady_clock;

  asio::awaitable<bool> perform_actions();
  asio::awaitable<bool> flush();
  asio::awaitable<bool> upgrade_tls();
  void feed(std::string_view bytes);
  void finish();

  void arm(std::chrono::milliseconds timeout);
  void watch();
  void on_timer();

  server& srv_;
  transport io_;
  bool implicit_tls_;
  asio::steady_timer timer_;
  steady::time_point deadline_;
  bool timed_out_ = false;
  bool shutting_down_ = false;
  bool shutdown_handled_ = false;
  bool finished_ = false;
  session::transcript transcript_;
  session::server_session session_;
  std::string out_;
  std::string in_;
};

}  // namespace smtpfault::net
