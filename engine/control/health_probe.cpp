#include "control/health_probe.hpp"

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include "control/socket_deadline.hpp"
#include "net/as_value.hpp"
#include "proto/duration.hpp"
#include "proto/reply_stream.hpp"

// Only the status line is read: the probe needs the status alone, and asks the server to close.
// A plain request and a line read keep this file free of Beast's HTTP templates, which made it
// one of the slowest of the project to compile for a one-line answer.
namespace smtpfault::control {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

using net::as_value;

// Longer than any status line the API sends; what is not HTTP is cut here.
constexpr std::size_t status_line_limit = 512;

std::string request_for(const tcp::endpoint& ep, const std::string& path,
                        const std::string& token) {
  const auto address = ep.address().to_string();
  const auto host = ep.address().is_v6() ? "[" + address + "]" : address;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(ep.port()) +
                    "\r\nConnection: close\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  return req + "\r\n";
}

// "HTTP/1.1 200 OK" -> 200; nullopt for anything that is not an HTTP/1.x status line.
std::optional<unsigned> status_of(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return std::nullopt;
  if (line.size() > 12 && line[12] != ' ') return std::nullopt;
  unsigned status = 0;
  for (char c : line.substr(9, 3)) {
    if (c < '0' || c > '9') return std::nullopt;
    status = status * 10 + static_cast<unsigned>(c - '0');
  }
  return status;
}

}  // namespace

proto::expected<unsigned, std::string> probe(const tcp::endpoint& ep, const std::string& path,
                                             const std::string& token,
                                             std::chrono::milliseconds timeout) {
  asio::io_context io;
  std::string error;
  unsigned status = 0;
  auto run = [&]() -> asio::awaitable<void> {
    tcp::socket stream(io);
    socket_deadline deadline(stream);
    deadline.expires_after(timeout);  // one deadline for connect, request and response
    const auto failed = [&](const std::string& why) {
      error = deadline.passed()
                  ? "no answer within " + proto::seconds_text(timeout.count() / 1000.0) + " s"
                  : why;
    };
    auto [cec] = co_await stream.async_connect(ep, as_value);
    if (cec) co_return failed("cannot connect: " + cec.message());
    const std::string req = request_for(ep, path, token);
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(req), as_value);
    if (wec) co_return failed(wec.message());
    std::string got;
    std::size_t line_end = std::string::npos;
    while (line_end == std::string::npos && got.size() < status_line_limit) {
      char buf[status_line_limit];
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(buf), as_value);
      got.append(buf, n);
      line_end = got.find('\n');
      if (!rec) continue;
      if (got.empty() || deadline.passed()) {
        co_return failed(rec == asio::error::eof ? "the server closed the connection unanswered"
                                                 : rec.message());
      }
      break;  // closed after a part of a line: judged on what came
    }
    std::string_view line(got);
    line = line.substr(0, std::min(line_end, status_line_limit));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto s = status_of(line)) {
      status = *s;
      co_return;
    }
    error = "no HTTP reply (it began '" + proto::printable(line, 60) +
            "'): is this the API's port, not an SMTP one?";
  };
  asio::co_spawn(io, run, asio::detached);
  io.run();
  if (!error.empty()) return proto::unexpected{error};
  return status;
}

}  // namespace smtpfault::control
