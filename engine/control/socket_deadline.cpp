#include "control/socket_deadline.hpp"

namespace smtpfault::control {

socket_deadline::socket_deadline(boost::asio::ip::tcp::socket& socket)
    : watch_(std::make_shared<watch>(watch{&socket})), timer_(socket.get_executor()) {}

socket_deadline::~socket_deadline() {
  watch_->socket = nullptr;  // a handler already queued must not touch the socket
}

void socket_deadline::expires_after(std::chrono::steady_clock::duration d, on_expiry what) {
  timer_.expires_after(d);  // cancels the previous wait
  const unsigned armed = ++watch_->armed;
  watch_->passed = false;
  timer_.async_wait([w = watch_, armed, what](const boost::system::error_code& ec) {
    // A handler that fired just before a re-arming, and was queued, is stale.
    if (ec || w->armed != armed || w->socket == nullptr) return;
    w->passed = true;
    boost::system::error_code ignored;
    if (what == on_expiry::cancel) {
      // Reads end now and from now on (a read that completed in this instant, its handler
      // queued, would otherwise be followed by one without a deadline); writes still go.
      w->socket->shutdown(boost::asio::ip::tcp::socket::shutdown_receive, ignored);
      w->socket->cancel(ignored);
    } else {
      w->socket->close(ignored);
    }
  });
}

void socket_deadline::expires_never() {
  ++watch_->armed;
  timer_.cancel();
}

}  // namespace smtpfault::control
