#include "net/transport.hpp"

#include <charconv>
#include <cstring>
#include <iterator>
#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

namespace smtpfault::net {

namespace {
using namespace asio::experimental::awaitable_operators;
}  // namespace

bool closed_by_peer(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

asio::awaitable<io_result> transport::read_some(asio::mutable_buffer buf) {
  auto [ec, n] = tls_ ? co_await tls_->async_read_some(buf, as_value)
                      : co_await socket_.async_read_some(buf, as_value);
  if (counters_) counters_->bytes_received.add(n);
  co_return io_result{ec, n};
}

namespace {
constexpr std::size_t read_chunk = 64 * 1024;
constexpr std::size_t tls_read_chunk = 16 * 1024;  // one TLS record

char* thread_read_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[read_chunk]);
  return buf.get();
}
}  // namespace

asio::awaitable<transport::read_view> transport::read_available() {
  if (deferred_error_) {
    const auto ec = std::exchange(deferred_error_, error_code{});
    co_return read_view{ec, {}};
  }
  if (tls_) {
    if (!tls_buffer_) tls_buffer_.reset(new char[tls_read_chunk]);
    auto r = co_await read_some(asio::buffer(tls_buffer_.get(), tls_read_chunk));
    co_return read_view{r.ec, std::string_view(tls_buffer_.get(), r.bytes)};
  }
  // Asio tries the read at once and waits on epoll only when nothing was there. Waiting with
  // async_wait instead re-arms the socket with epoll_ctl before every wait, which costs more
  // than a read that finds nothing (bench/RESULTS.md).
  auto [ec, n] = co_await socket_.async_read_some(asio::buffer(command_buffer_), as_value);
  if (ec || n < command_buffer_.size()) {
    if (counters_) counters_->bytes_received.add(n);
    co_return read_view{ec, std::string_view(command_buffer_.data(), n)};
  }
  // Full: a message's text or pipelined commands. The rest goes on in the thread's buffer,
  // which nothing else can touch before the caller has taken it (no co_await in between).
  char* buf = thread_read_buffer();
  std::memcpy(buf, command_buffer_.data(), n);
  error_code more_ec;
  if (!socket_.non_blocking()) socket_.non_blocking(true, more_ec);
  std::size_t more = socket_.read_some(asio::buffer(buf + n, read_chunk - n), more_ec);
  if (more_ec) {
    more = 0;
    // The end of input or a reset comes after the octets that arrived before it.
    if (more_ec != asio::error::would_block && more_ec != asio::error::try_again) {
      deferred_error_ = more_ec;
    }
  }
  if (counters_) counters_->bytes_received.add(n + more);
  co_return read_view{{}, std::string_view(buf, n + more)};
}

asio::awaitable<void> transport::read_until_end(std::string& into, std::size_t most) {
  while (into.size() < most) {
    auto r = co_await read_available();
    into.append(r.data);
    if (r.ec) {
      deferred_error_ = r.ec;
      co_return;
    }
  }
}

asio::awaitable<io_result> transport::write(asio::const_buffer buf) {
  if (tls_) {
    auto [ec, n] = co_await asio::async_write(*tls_, buf, as_value);
    sent_ += n;
    if (counters_) counters_->bytes_sent.add(n);
    co_return io_result{ec, n};
  }
  // A reply nearly always fits the socket buffer: send it now, and wait for writability only
  // for what did not fit. An async_write would go through the scheduler even when it need not.
  error_code ec;
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
  std::size_t sent = socket_.write_some(buf, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  if (!ec && sent < buf.size()) {
    auto [wait_ec, n] = co_await asio::async_write(socket_, buf + sent, as_value);
    ec = wait_ec;
    sent += n;
  }
  sent_ += sent;
  if (counters_) counters_->bytes_sent.add(sent);
  co_return io_result{ec, sent};
}

asio::awaitable<io_result> transport::write_some(asio::const_buffer buf) {
  auto [ec, n] = tls_ ? co_await tls_->async_write_some(buf, as_value)
                      : co_await socket_.async_write_some(buf, as_value);
  sent_ += n;
  if (counters_) counters_->bytes_sent.add(n);
  co_return io_result{ec, n};
}

asio::awaitable<error_code> transport::server_handshake(asio::ssl::context& ctx) {
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, ctx);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, as_value);
  tls_up_ = !ec;
  if (counters_) (ec ? counters_->tls_handshake_failures : counters_->tls_handshakes).add();
  co_return ec;
}

asio::awaitable<error_code> transport::client_handshake(asio::ssl::context& ctx,
                                                        const std::string& sni, bool check_name) {
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, ctx);
  SSL* ssl = tls_->native_handle();
  error_code not_ip;
  asio::ip::make_address(sni, not_ip);
  // RFC 6066 3: server_name carries a host name, never an address literal.
  if (!sni.empty() && not_ip) SSL_set_tlsext_host_name(ssl, sni.c_str());
  if (check_name) {
    // OpenSSL does not take an IPv6 zone ("fe80::1%eth0"); the certificate cannot name one.
    std::string ip = sni.substr(0, sni.find('%'));
    int set = not_ip ? SSL_set1_host(ssl, sni.c_str())
                     : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip.c_str());
    // Without the name to check, a certificate for any name would pass: no handshake then.
    if (set != 1) co_return asio::error::invalid_argument;
  }
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, as_value);
  tls_up_ = !ec;
  co_return ec;
}

namespace {
// The race of an operation with a timer, written here once: each instance of `||` is a large
// template, and the clients' files compiled it for every call. Reads and writes share one.
template <typename T>
asio::awaitable<std::optional<T>> before(asio::awaitable<T> op, steady_time deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  auto r = co_await (std::move(op) || timer.async_wait(as_value));
  if (r.index() == 1) co_return std::nullopt;
  co_return std::get<0>(std::move(r));
}
}  // namespace

asio::awaitable<std::optional<io_result>> transport::read_some_before(asio::mutable_buffer buf,
                                                                      steady_time deadline) {
  return before(read_some(buf), deadline);
}

asio::awaitable<std::optional<io_result>> transport::write_some_before(asio::const_buffer buf,
                                                                       steady_time deadline) {
  return before(write_some(buf), deadline);
}

asio::awaitable<std::optional<error_code>> transport::client_handshake_before(
    asio::ssl::context& ctx, const std::string& sni, bool check_name, steady_time deadline) {
  return before(client_handshake(ctx, sni, check_name), deadline);
}

asio::awaitable<connect_result> connect_before(tcp::socket& socket, const std::string& host,
                                               std::uint16_t port, steady_time deadline) {
  using step = connect_result::step;
  tcp::resolver resolver(socket.get_executor());
  asio::steady_timer timer(socket.get_executor(), deadline);
  auto rr = co_await (resolver.async_resolve(host, std::to_string(port), as_value) ||
                      timer.async_wait(as_value));
  if (rr.index() == 1) co_return connect_result{step::resolve, true, {}};
  auto [rec, results] = std::get<0>(rr);
  if (rec) co_return connect_result{step::resolve, false, rec};
  auto cr = co_await (asio::async_connect(socket, results, as_value) || timer.async_wait(as_value));
  if (cr.index() == 1) co_return connect_result{step::connect, true, {}};
  auto [cec, ep] = std::get<0>(cr);
  if (cec) co_return connect_result{step::connect, false, cec};
  co_return connect_result{};
}

std::string transport::tls_version() const {
  return tls_ ? SSL_get_version(tls_->native_handle()) : "";
}

std::string transport::tls_cipher() const {
  return tls_ ? SSL_get_cipher_name(tls_->native_handle()) : "";
}

// OpenSSL verifies the server's chain and keeps the result whether or not verification was
// asked for: unasked, that result is no reason for a failure (the handshake failed otherwise).
bool transport::tls_verified() const {
  return tls_ && (SSL_get_verify_mode(tls_->native_handle()) & SSL_VERIFY_PEER) != 0;
}

bool transport::tls_issuer_untrusted() const {
  if (!tls_verified()) return false;
  switch (SSL_get_verify_result(tls_->native_handle())) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return true;
    default:
      return false;
  }
}

bool transport::tls_waited_after_certificate() const {
  if (!tls_) return false;
  SSL* ssl = tls_->native_handle();
  const auto state = SSL_get_state(ssl);
  // TLS 1.2 waits after ServerHelloDone; TLS 1.3 after the server's Finished, in the state
  // that reads early data or the client's Finished. A resumed session sent no certificate.
  return (state == TLS_ST_SW_SRVR_DONE || state == TLS_ST_SW_FINISHED ||
          state == TLS_ST_EARLY_DATA) &&
         !SSL_session_reused(ssl);
}

std::string transport::tls_verify_error() const {
  if (!tls_verified()) return "";
  long v = SSL_get_verify_result(tls_->native_handle());
  return v == X509_V_OK ? "" : X509_verify_cert_error_string(v);
}

void transport::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
}

asio::awaitable<void> transport::close_tls(std::chrono::milliseconds wait) {
  if (!tls_up_) co_return;  // nothing to close without a session (a failed handshake)
  asio::steady_timer timer(socket_.get_executor(), wait);
  // A peer that never answers (or never reads) costs the wait, not the session's idle timeout.
  co_await (tls_->async_shutdown(as_value) || timer.async_wait(as_value));
}

void transport::close() {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void transport::reset() {
  error_code ignored;
  socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
}

bool peer_closed(int descriptor) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(descriptor, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
  return info.tcpi_state == TCP_CLOSE_WAIT || info.tcpi_state == TCP_CLOSE;
}

bool transport::peer_closed() const {
  if (!socket_.is_open()) return true;
  return net::peer_closed(const_cast<tcp::socket&>(socket_).native_handle());
}

std::string host_port_text(std::string_view host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  return (v6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" + std::to_string(port);
}

std::string endpoint_text(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  std::string text;
  if (addr.is_v4()) {
    // By hand: inet_ntop's sprintf was a visible share of what each accepted connection costs.
    char buf[sizeof "255.255.255.255"];
    char* p = buf;
    for (auto octet : addr.to_v4().to_bytes()) {
      if (p != buf) *p++ = '.';
      p = std::to_chars(p, std::end(buf), octet).ptr;
    }
    text.assign(buf, p);
  } else {
    text = "[" + addr.to_string() + "]";
  }
  char port[8];
  auto end = std::to_chars(port, std::end(port), ep.port()).ptr;
  text += ':';
  text.append(port, end);
  return text;
}

}  // namespace smtpfault::net
