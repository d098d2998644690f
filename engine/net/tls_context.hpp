// Server TLS contexts: the configured certificate, or a self-signed one made at start-up.
#pragma once

#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace smtpfault::net {

struct tls_identity {
  std::string cert_file;   // PEM; both empty = generate a self-signed certificate
  std::string key_file;
  std::string hostname;    // subject and subjectAltName of a generated certificate
};

// Throws std::runtime_error with a readable message when files cannot be loaded (start-up only).
boost::asio::ssl::context make_server_context(const tls_identity& id);

// A client context; verify=false accepts any certificate (for testing mocks).
boost::asio::ssl::context make_client_context(bool verify);

}  // namespace smtpfault::net
