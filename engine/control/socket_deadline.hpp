// One deadline for the operations on a socket of the HTTP API (server and healthcheck probe).
// When it passes the socket is closed: what is pending completes with an error, what comes later
// fails at once (Beast's tcp_stream does the same, but its templates doubled the compile time of
// each file that used it). Or, asked to, only reading ends, so that an answer can still be
// written: a 408 to a request that came too slowly.
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace smtpfault::control {

// For a socket used from one thread at a time, the thread that runs the timer's handler.
class socket_deadline {
 public:
  explicit socket_deadline(boost::asio::ip::tcp::socket& socket);
  ~socket_deadline();
  socket_deadline(const socket_deadline&) = delete;
  socket_deadline& operator=(const socket_deadline&) = delete;

  enum class on_expiry { close, cancel };
  void expires_after(std::chrono::steady_clock::duration d, on_expiry what = on_expiry::close);
  void expires_never();
  // Whether a deadline closed the socket or cancelled its operations (to tell a timeout from
  // the peer's doing).
  bool passed() const { return watch_->passed; }

 private:
  // Shared with the timer's handler, which can run after this object is gone.
  struct watch {
    boost::asio::ip::tcp::socket* socket;
    unsigned armed = 0;  // the arming a firing handler must belong to
    bool passed = false;
  };
  std::shared_ptr<watch> watch_;
  boost::asio::steady_timer timer_;
};

}  // namespace smtpfault::control
