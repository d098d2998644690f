// The API's socket deadline on a real loopback connection: it closes the socket when it passes,
// a new deadline replaces the old one, expires_never lifts it, and a handler that runs after the
// deadline object is gone touches nothing.
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "control/socket_deadline.hpp"

namespace smtpfault::control {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connected pair on loopback; the peer never writes, so a read on `socket` only ends by the
// deadline (or by the test's own backstop timer, which fails the test).
struct loopback_pair {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  tcp::socket socket{io};
  tcp::socket peer{io};
  loopback_pair() {
    socket.connect(acceptor.local_endpoint());
    peer = acceptor.accept();
  }
  // Reads once; the error it ended with, or nullopt if it was still pending after `limit`.
  std::optional<boost::system::error_code> read_once(std::chrono::milliseconds limit) {
    std::array<char, 16> buf;
    std::optional<boost::system::error_code> ended;
    bool late = false;
    socket.async_read_some(asio::buffer(buf), [&](auto ec, std::size_t) { ended = ec; });
    bool backstop_done = false;
    asio::steady_timer backstop(io, limit);
    backstop.async_wait([&](auto ec) {
      late = !ec;
      backstop_done = true;
    });
    while (!ended && !late)
      io.run_one();
    const bool in_time = ended.has_value();
    boost::system::error_code closed;  // by the deadline, in the cases that test it
    socket.cancel(closed);
    backstop.cancel();
    // Both handlers have run before the locals they write to go away.
    while (!ended || !backstop_done)
      io.run_one();
    if (in_time) return ended;
    return std::nullopt;
  }
};

TEST(socket_deadline, closes_the_socket_when_it_passes) {
  loopback_pair p;
  socket_deadline deadline(p.socket);
  deadline.expires_after(20ms);
  auto ended = p.read_once(5s);
  ASSERT_TRUE(ended) << "the read outlived the deadline";
  EXPECT_TRUE(*ended);
  EXPECT_TRUE(deadline.passed());
  EXPECT_FALSE(p.socket.is_open());
}

// A deadline of 20 ms, then `change`: 200 ms later the socket is still open and unread.
template <class Change>
void expect_the_first_deadline_gone(Change change) {
  loopback_pair p;
  socket_deadline deadline(p.socket);
  deadline.expires_after(20ms);
  change(deadline);
  EXPECT_FALSE(p.read_once(200ms)) << "the first deadline still closed the socket";
  EXPECT_FALSE(deadline.passed());
  EXPECT_TRUE(p.socket.is_open());
}

TEST(socket_deadline, a_new_deadline_replaces_the_old_one) {
  expect_the_first_deadline_gone([](socket_deadline& d) { d.expires_after(10s); });
}

TEST(socket_deadline, expires_never_lifts_it) {
  expect_the_first_deadline_gone([](socket_deadline& d) { d.expires_never(); });
}

// Lets a deadline of 0 pass, then runs `change` from a handler posted before the reactor runs,
// so that it comes ahead of the timer's handler, already queued with success.
template <class Change>
void with_an_expiry_queued(loopback_pair& p, socket_deadline& deadline, Change change) {
  deadline.expires_after(0ms);
  std::this_thread::sleep_for(5ms);
  asio::post(p.io, change);
  for (int i = 0; i < 5; ++i)
    p.io.poll_one();
}

TEST(socket_deadline, an_expiry_already_queued_when_it_is_re_armed_is_ignored) {
  loopback_pair p;
  socket_deadline deadline(p.socket);
  with_an_expiry_queued(p, deadline, [&] { deadline.expires_after(10s); });
  EXPECT_TRUE(p.socket.is_open()) << "a stale expiry closed the socket";
  EXPECT_FALSE(deadline.passed());
}

TEST(socket_deadline, an_expiry_already_queued_when_it_is_lifted_is_ignored) {
  loopback_pair p;
  socket_deadline deadline(p.socket);
  with_an_expiry_queued(p, deadline, [&] { deadline.expires_never(); });
  EXPECT_TRUE(p.socket.is_open()) << "a stale expiry closed the socket";
}

TEST(socket_deadline, an_expiry_already_queued_when_it_is_gone_touches_nothing) {
  loopback_pair p;
  std::optional<socket_deadline> deadline;
  deadline.emplace(p.socket);
  // The socket stays (here): a handler that still acted would close it.
  with_an_expiry_queued(p, *deadline, [&] { deadline.reset(); });
  EXPECT_TRUE(p.socket.is_open()) << "the deadline acted after it was gone";
}

TEST(socket_deadline, gone_before_its_handler_ran_it_leaves_the_socket_alone) {
  loopback_pair p;
  {
    socket_deadline deadline(p.socket);
    deadline.expires_after(0ms);  // already passed, but nothing has run the handler yet
  }
  p.io.run();
  EXPECT_TRUE(p.socket.is_open());
}

}  // namespace
}  // namespace smtpfault::control
