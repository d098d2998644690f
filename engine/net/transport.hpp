// A TCP connection that may be upgraded to TLS in place (STARTTLS) or start as TLS (RFC 8314).
// Every operation reports errors as values.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "net/as_value.hpp"
#include "net/metrics.hpp"

namespace smtpfault::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

using steady_time = std::chrono::steady_clock::time_point;

struct io_result {
  error_code ec;
  std::size_t bytes = 0;
};

// How a client's connect ended: the step that failed (with its error) or none.
struct connect_result {
  enum class step { none, resolve, connect };
  step failed = step::none;
  bool timed_out = false;  // the deadline passed during `failed`
  error_code ec;
};

// Resolves host and connects socket to the first of its addresses that answers, both before
// `deadline`.
asio::awaitable<connect_result> connect_before(tcp::socket& socket, const std::string& host,
                                               std::uint16_t port, steady_time deadline);

// "192.0.2.1:25" or "[2001:db8::1]:25"; a v4-mapped v6 address is shown as v4.
std::string endpoint_text(const tcp::endpoint& ep);
// The same for a host as given (a name or an address): "mx.example.test:25", "[::1]:2525".
std::string host_port_text(std::string_view host, std::uint16_t port);

// A read's error that means the peer closed: the end of the stream, or over TLS a close
// without close_notify ("stream truncated"), a close all the same.
bool closed_by_peer(const error_code& ec);

// The kernel's view of a connected socket: CLOSE_WAIT once the peer's FIN came, CLOSE after its
// RST (or when it cannot tell: false).
bool peer_closed(int descriptor);

class transport {
 public:
  explicit transport(tcp::socket socket) : socket_(std::move(socket)) {}

  asio::awaitable<io_result> read_some(asio::mutable_buffer buf);

  struct read_view {
    error_code ec;
    std::string_view data;  // valid until the next co_await on this thread
  };
  // Waits for input and returns it. Plain: a command line lands in a small buffer of the
  // connection's own; input that fills it (a message's text) continues in a per-thread buffer,
  // read synchronously, so no other coroutine can overwrite it in between. A TLS stream reads
  // into a buffer of the transport's own, allocated at the upgrade.
  asio::awaitable<read_view> read_available();
  // What a peer that has closed sent before its end (over TLS, decrypted), up to `most` octets,
  // appended to `into`; the end itself (a close_notify, a truncation, a reset) is kept for the
  // next read_available(). Each read finds its input there, so it waits for nothing new.
  asio::awaitable<void> read_until_end(std::string& into, std::size_t most);
  asio::awaitable<io_result> write(asio::const_buffer buf);
  // One write of as much as the peer takes now: a caller that may give up counts what went.
  asio::awaitable<io_result> write_some(asio::const_buffer buf);
  asio::awaitable<error_code> server_handshake(asio::ssl::context& ctx);
  // check_name: the certificate must also be for sni (a host name or an IP address), checked by
  // OpenSSL itself so a failure says "hostname mismatch" or "IP address mismatch".
  asio::awaitable<error_code> client_handshake(asio::ssl::context& ctx, const std::string& sni,
                                               bool check_name = false);

  // The clients' forms of read_some, write_some and client_handshake: given up, with nullopt,
  // when the deadline passes first.
  asio::awaitable<std::optional<io_result>> read_some_before(asio::mutable_buffer buf,
                                                             steady_time deadline);
  asio::awaitable<std::optional<io_result>> write_some_before(asio::const_buffer buf,
                                                              steady_time deadline);
  asio::awaitable<std::optional<error_code>> client_handshake_before(asio::ssl::context& ctx,
                                                                     const std::string& sni,
                                                                     bool check_name,
                                                                     steady_time deadline);

  bool is_tls() const { return tls_ != nullptr; }
  std::string tls_version() const;
  std::string tls_cipher() const;
  // Why the peer's certificate failed verification ("self-signed certificate"), or "" (also
  // when verification was not asked for).
  std::string tls_verify_error() const;
  // Whether verification failed because no trusted CA vouches for the chain (self-signed, or an
  // issuer the trust store lacks), as opposed to a bad name or date.
  bool tls_issuer_untrusted() const;
  // Whether a failed server handshake had sent the server's whole first flight (its certificate
  // with it) and was waiting for the client's answer to it.
  bool tls_waited_after_certificate() const;

  // Cancels pending operations (used by deadlines and shutdown).
  void cancel();
  // TLS: sends close_notify (RFC 8446 6.1) and gives the peer `wait` to answer it, so that a
  // client does not see a truncated stream after the server's last reply; then close().
  asio::awaitable<void> close_tls(std::chrono::milliseconds wait);
  // Closes the socket (after close_tls, or without close_notify: a fault's abrupt end).
  void close();
  // Abortive close: SO_LINGER 0 makes the kernel send RST.
  void reset();
  // Whether the client has closed its side or reset the connection, without reading (input
  // that waits stays for later): what a long pause looks at.
  bool peer_closed() const;

  // Octets and handshakes are added here from now on (the server's metrics).
  void count_into(io_counters* c) { counters_ = c; }
  // Octets written so far (before TLS: the replies' own).
  std::uint64_t sent() const { return sent_; }

  tcp::socket& socket() { return socket_; }

 private:
  bool tls_verified() const;  // the handshake was asked to verify the peer
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  bool tls_up_ = false;  // the handshake succeeded
  std::unique_ptr<char[]> tls_buffer_;
  // Big enough for any ordinary command line; small, since every idle session holds one.
  std::array<char, 256> command_buffer_;
  error_code deferred_error_;  // met by the read that filled the buffers, returned next
  io_counters* counters_ = nullptr;
  std::uint64_t sent_ = 0;
};

}  // namespace smtpfault::net
