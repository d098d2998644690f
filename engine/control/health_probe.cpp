#include "control/health_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "control/socket_deadline.hpp"
#include "proto/duration.hpp"

namespace smtpfault::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

proto::expected<unsigned, std::string> probe(const asio::ip::tcp::endpoint& ep,
                                             const std::string& path, const std::string& token,
                                             std::chrono::milliseconds timeout) {
  asio::io_context io;
  std::string error;
  unsigned status = 0;
  auto run = [&]() -> asio::awaitable<void> {
    constexpr auto as_value = asio::as_tuple(asio::use_awaitable);
    asio::ip::tcp::socket stream(io);
    socket_deadline deadline(stream);
    deadline.expires_after(timeout);  // one deadline for connect, request and response
    const auto timed_out = [&] {
      error = "no answer within " + proto::seconds_text(timeout.count() / 1000.0) + " s";
    };
    auto [cec] = co_await stream.async_connect(ep, as_value);
    if (cec) {
      if (deadline.passed()) co_return timed_out();
      error = "cannot connect: " + cec.message();
      co_return;
    }
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, ep.address().to_string());
    req.set(http::field::connection, "close");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    auto [wec, wn] = co_await http::async_write(stream, req, as_value);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    auto [rec, rn] = wec ? std::tuple{wec, std::size_t{0}}
                         : co_await http::async_read(stream, buf, res, as_value);
    if (wec || rec) {
      if (deadline.passed()) co_return timed_out();
      error = (wec ? wec : rec).message();
      // Beast's "bad version" and friends: something answered, but not in HTTP.
      if (rec && rec.category() == make_error_code(http::error::bad_version).category()) {
        error = "no HTTP reply (" + error + "): is this the API's port, not an SMTP one?";
      }
      co_return;
    }
    status = res.result_int();
  };
  asio::co_spawn(io, run, asio::detached);
  io.run();
  if (!error.empty()) return proto::unexpected{error};
  return status;
}

}  // namespace smtpfault::control
