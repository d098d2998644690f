// TLS on a connection: the handshake of an implicit-TLS port and the upgrade after STARTTLS,
// with the faults a scenario or rule put on them (plaintext injected after the 220, a handshake
// aborted mid-way, the certificate presented).
#include <algorithm>

#include "capture/session_analysis.hpp"
#include "net/connection.hpp"
#include "net/server.hpp"
#include "proto/bounded_text.hpp"

namespace smtpfault::net {

namespace {

using sys_clock = std::chrono::system_clock;
using std::chrono::milliseconds;

// The handshake of a connection over the cap on an implicit-TLS port, which only carries its
// 421: a client that does not finish it soon holds no slot of the server's for long.
constexpr milliseconds over_cap_handshake_timeout{2000};

}  // namespace

// The handshake of an implicit-TLS port, after the faults asked of on_starttls or an API rule.
asio::awaitable<connection::tls_opening> connection::open_implicit_tls(bool over_cap) {
  tls_opening result;
  // A named object, not a temporary: GCC 12 destroys a temporary argument of a co_await
  // under a condition without having constructed it (free() of a garbage string pointer).
  session::start_tls handshake{};
  if (!over_cap) {
    auto chosen = co_await implicit_tls_faults();
    result.hook_failed = !chosen;
    if (chosen) handshake = *chosen;
  }
  if (client_gone_) co_return result;  // left while on_starttls slept: no handshake to try
  result.ok = co_await upgrade_tls(handshake);
  co_return result;
}

asio::awaitable<void> connection::read_and_reset() {
  // Let the ClientHello arrive, then abort: the client sees the handshake fail mid-way.
  arm(milliseconds(2000));
  co_await io_.read_available();
  session_.note("TLS handshake aborted by the scenario", sys_clock::now());
  io_.reset();
}

asio::awaitable<bool> connection::upgrade_tls(const session::start_tls& how) {
  if (how.mode == fault::starttls_mode::inject_plaintext) {
    // Same segment as the 220, so a vulnerable client reads it as a reply after the handshake.
    out_ += how.inject;
    // The octets themselves (the log escapes CR and LF): what the client read after the
    // handshake, if it did. A long injection is shown by its start.
    session_.note(
        std::string(capture::plaintext_injected) + "'" + proto::bounded_text(how.inject, 512) + "'",
        sys_clock::now());
  }
  // Plaintext the session had not read when a hook was consulted about STARTTLS: the session
  // drops such octets itself only when they arrive while it waits for the handshake.
  if (!in_.empty()) {
    session_.note_plaintext_discarded(in_.size(), sys_clock::now());
    std::string().swap(in_);
  }
  if (!co_await flush()) co_return false;
  if (how.mode == fault::starttls_mode::abort_handshake) {
    co_await read_and_reset();
    co_return false;
  }
  // A connection over the cap is owed its 421, not a long wait for it.
  arm(holds_slot_ ? srv_.cfg_.tls_handshake_timeout
                  : std::min(srv_.cfg_.tls_handshake_timeout, over_cap_handshake_timeout));
  auto ec = co_await io_.server_handshake(srv_.tls_.get(how.certificate));
  if (ec) {
    std::string why = timed_out_ ? std::string("timeout") : ec.message();
    // A client that refuses the certificate says so with an alert, which OpenSSL reports; one
    // that only closes (Node.js) leaves an end of stream, said here for the test runner.
    const bool closed = ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
                        ec == asio::error::connection_reset;
    if (!timed_out_ && closed && io_.tls_waited_after_certificate()) {
      why += "; ";
      why += capture::closed_after_certificate;
    }
    // A client that refuses a certificate the scenario made bad is doing right; one that
    // refuses the server's own does not trust the test CA, which the test runner then says.
    if (auto bad = fault::certificate_kind_name(how.certificate); !bad.empty()) {
      why += std::string(capture::certificate_made_bad) + std::string(bad) + " one";
    }
    session_.note("TLS handshake failed: " + why, sys_clock::now());
    co_return false;
  }
  session_.on_tls_established(io_.tls_version(), io_.tls_cipher(), sys_clock::now());
  // A client that checks the certificate after the handshake refuses it only now, by closing.
  if (auto bad = fault::certificate_kind_name(how.certificate); !bad.empty()) {
    session_.note(std::string(capture::bad_certificate_established) + std::string(bad) + " one",
                  sys_clock::now());
  }
  co_return true;
}

}  // namespace smtpfault::net
