#include "control/api_server.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <stdexcept>
#include <tuple>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/version.hpp>

#include "control/router.hpp"
#include "control/socket_deadline.hpp"
#include "net/exception_text.hpp"
#include "net/transport.hpp"
#include "proto/duration.hpp"

namespace smtpfault::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

using net::as_value;

// A request that could not be read completely still gets a JSON answer when one makes sense.
std::optional<response> read_failure(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    return error_response({413, "request body too large", ""});
  }
  if (ec == http::error::header_limit) {
    return error_response(
        {431,
         "request line and headers over 16 KiB together (a long URL counts: query "
         "strings that long are no filter)",
         ""});
  }
  const auto& http_errors = beast::error_code(http::error::end_of_stream).category();
  if (ec.category() == http_errors && ec != http::error::end_of_stream &&
      ec != http::error::partial_message) {
    return error_response({400, "malformed HTTP request: " + ec.message(), ""});
  }
  return std::nullopt;
}

// RFC 9112 6.1 and 6.3: the body's length is known only when chunked is the last transfer coding,
// and no other coding is undone here. Read any other way, the body would be taken for the next
// request on the connection (a JSON body refused as empty, then run as a request of its own).
std::optional<response> transfer_coding_refusal(const http::request_parser<http::string_body>& p) {
  const auto& header = p.get();
  if (header.find(http::field::transfer_encoding) == header.end()) return std::nullopt;
  if (header.version() < 11) {
    return error_response(
        {400, "Transfer-Encoding in an HTTP/1.0 request: its length cannot be known", ""});
  }
  if (!p.chunked()) {
    return error_response({400,
                           "Transfer-Encoding does not end in chunked: the body's length cannot "
                           "be known (send Content-Length, or chunked alone)",
                           ""});
  }
  if (!beast::iequals(header[http::field::transfer_encoding], "chunked")) {
    return error_response({501, "Transfer-Encoding: only chunked is understood, alone", ""});
  }
  return std::nullopt;
}

// Part of a request came, too slowly: RFC 9110 15.5.9's 408. An idle keep-alive connection that
// sent nothing is closed without a word.
std::optional<response> too_slow(bool started, std::chrono::milliseconds limit) {
  if (!started) return std::nullopt;
  const double seconds = std::chrono::duration<double>(limit).count();
  return error_response(
      {408, "request not complete within " + proto::seconds_text(seconds) + " s", ""});
}

// Answers a request that is not read to its end, then reads and drops what the client is still
// sending (bounded in time and size), so closing does not reset the connection before the client
// has read the answer.
asio::awaitable<void> refuse(tcp::socket& socket, socket_deadline& deadline, response& res) {
  res.keep_alive(false);
  res.prepare_payload();
  deadline.expires_after(std::chrono::seconds(5));
  auto [wec, wn] = co_await http::async_write(socket, res, as_value);
  if (wec) co_return;
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  deadline.expires_after(std::chrono::seconds(2));
  std::array<char, 16 * 1024> sink;
  std::size_t drained = 0;
  while (drained < 16 * 1024 * 1024) {
    auto [rec, n] = co_await socket.async_read_some(asio::buffer(sink), as_value);
    if (rec) break;
    drained += n;
  }
}

// Counts a request as being answered until its reply is written, however that ends.
struct answering_guard {
  api_context& ctx;
  explicit answering_guard(api_context& c) : ctx(c) { ++ctx.answering; }
  ~answering_guard() { --ctx.answering; }
};

asio::awaitable<void> serve_connection(tcp::socket socket, api_context& ctx) {
  socket_deadline deadline(socket);
  beast::flat_buffer buffer(16 * 1024);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(ctx.options.body_limit);
    // One deadline for the whole request, which also bounds an idle keep-alive connection.
    deadline.expires_after(ctx.options.request_timeout, socket_deadline::on_expiry::cancel);
    auto [ec, n] = co_await http::async_read_header(socket, buffer, parser, as_value);
    if (!ec && !deadline.passed()) {
      if (auto refusal = transfer_coding_refusal(parser)) {
        co_await refuse(socket, deadline, *refusal);
        break;
      }
    }
    // RFC 9110 10.1.1: a client that sent "Expect: 100-continue" waits for the 100 (curl a
    // second) before it sends the body.
    if (!ec && !deadline.passed() && !parser.is_done() && parser.get().version() >= 11 &&
        beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
      std::tie(ec, n) = co_await http::async_write(socket, go_on, as_value);
    }
    if (!ec && !deadline.passed() && !parser.is_done()) {
      std::tie(ec, n) = co_await http::async_read(socket, buffer, parser, as_value);
    }
    // A request read in the same moment as the deadline passed is not carried out: a client
    // retrying it after the 408 would do it twice.
    if (ec || deadline.passed()) {
      const bool started = parser.got_some() || buffer.size() > 0;
      auto res =
          deadline.passed() ? too_slow(started, ctx.options.request_timeout) : read_failure(ec);
      if (res) co_await refuse(socket, deadline, *res);
      break;
    }
    answering_guard answering(ctx);
    auto req = parser.release();
    const bool wants_keep_alive = req.keep_alive();
    const bool head = req.method() == http::verb::head;
    std::string authorization(req[http::field::authorization]);
    api_request areq = to_api_request(std::move(req));
    // A client that half-closes after its request is taken for gone: HTTP clients wait with
    // both ends open.
    areq.client_gone = [&socket] { return net::peer_closed(socket.native_handle()); };
    deadline.expires_never();  // a long-poll has its own deadline
    response res = co_await dispatch(ctx, areq, authorization);
    // RFC 9110 15.5.9: a 408 (a long-poll that timed out) closes the connection.
    const bool keep_alive =
        wants_keep_alive && !ctx.stopping && res.result() != http::status::request_timeout;
    res.version(areq.version);
    res.set(http::field::server, "smtpfault");
    res.keep_alive(keep_alive);
    res.prepare_payload();
    if (head) res.body().clear();
    deadline.expires_after(ctx.options.request_timeout);
    auto [wec, wn] = co_await http::async_write(socket, res, as_value);
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

void log_exception(std::exception_ptr e) {
  if (auto what = net::exception_text(e))
    std::fprintf(stderr, "smtpfault: internal error in an API request: %s\n", what->c_str());
}

}  // namespace

api_server::api_server(api_context ctx) : ctx_(std::move(ctx)) {}

api_server::~api_server() {
  stop();
}

void api_server::bind(const tcp::endpoint& ep) {
  boost::system::error_code ec;
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  // As the SMTP listeners: "[::]" is IPv6 alone, and "0.0.0.0" beside it is IPv4.
  if (!ec && ep.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    // Reported as the SMTP listeners' are: with where the address was given.
    throw net::listen_error(
        "cannot listen for the HTTP API on " + net::endpoint_text(ep) + ": " + ec.message(), "api");
  }
}

tcp::endpoint api_server::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void api_server::start() {
  auto accept_loop = [this]() -> asio::awaitable<void> {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(as_value);
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      if (ec) {
        // Out of descriptors: pause instead of spinning.
        asio::steady_timer pause(io_, std::chrono::milliseconds(50));
        co_await pause.async_wait(as_value);
        continue;
      }
      asio::co_spawn(io_, serve_connection(std::move(sock), ctx_), log_exception);
    }
  };
  asio::co_spawn(io_, accept_loop, log_exception);
  thread_ = std::thread([this] { io_.run(); });
}

void api_server::stop() {
  if (!thread_.joinable()) return;
  // Pending long-polls answer 503 at once, and the requests being answered get their replies
  // written, for at most 200 ms (local writes; the whole stop stays within its second); idle
  // keep-alive connections are simply closed.
  auto answered = std::make_shared<std::promise<void>>();
  auto wind_down = [this, answered]() -> asio::awaitable<void> {
    ctx_.stopping = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto* poll : ctx_.long_polls)
      poll->cancel();
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    asio::steady_timer tick(io_);
    while (ctx_.answering > 0 && std::chrono::steady_clock::now() < until) {
      tick.expires_after(std::chrono::milliseconds(5));
      co_await tick.async_wait(as_value);
    }
    answered->set_value();
  };
  asio::co_spawn(io_, wind_down, log_exception);
  answered->get_future().wait_for(std::chrono::milliseconds(300));
  io_.stop();
  thread_.join();
}

}  // namespace smtpfault::control
