// A one-message SMTP client (`smtpfault send`): plain, STARTTLS or implicit TLS, optional AUTH.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/dsn.hpp"

namespace smtpfault::net {

struct send_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 2525;
  enum class tls_mode { none, starttls, implicit } tls = tls_mode::none;
  bool verify_certificate = false;  // the chain and the host name; off: mocks are rarely trusted
  std::string ca_file;              // PEM file of CAs to trust as well (implies verification)
  std::string user;                 // AUTH PLAIN when set
  std::string password;
  std::string helo = "smtpfault.client";
  std::string from;
  std::vector<std::string> to;
  // The delivery status notifications asked for (RFC 3461); none by default.
  proto::dsn_request dsn;
  std::string data;                           // the message, CRLF line endings, not yet dot-stuffed
  std::chrono::milliseconds timeout{30'000};  // per reply
};

struct send_result {
  bool delivered = false;    // to every recipient
  std::string error;         // why not, when not delivered
  std::size_t accepted = 0;  // recipients the message went to (some, when a few were refused)
  std::vector<std::string> refused{};  // the recipients the server refused, in the order given
};

// on_line gets each transcript line ("C: ...", "S: ...") as it happens.
send_result send_message(const send_options& opts,
                         const std::function<void(std::string_view)>& on_line);

}  // namespace smtpfault::net
