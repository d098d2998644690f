// Server TLS contexts: the configured certificate (or one made at start-up, signed by the
// smtpfault test CA in fixtures/certs), plus the bad certificates scenarios can ask for.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "fault/action.hpp"
#include "proto/expected.hpp"

namespace smtpfault::net {

struct tls_identity {
  std::string cert_file;  // PEM; both empty = generate one at start-up
  std::string key_file;
  std::string hostname;            // subject and subjectAltName of generated certificates
  std::vector<std::string> names;  // more subjectAltNames for them: DNS names, IP addresses
  // The oldest TLS version the server takes ("1.0" to "1.3"): below 1.2 for a legacy client,
  // which OpenSSL 3 refuses at its default security level.
  std::string min_version = "1.2";
};

// What is wrong with configured certificate files: key names the setting at fault ("tls.cert"
// or "tls.key"), so the caller can say where it was set.
struct certificate_problem {
  std::string key;
  std::string message;
};
class tls_contexts {
 public:
  // The configured pair, loaded once at start-up, or the problem with it: unreadable files, a
  // key that is not the certificate's (of another type too), one given without the other.
  // Throws std::runtime_error only if a certificate cannot be generated.
  static proto::expected<std::unique_ptr<tls_contexts>, certificate_problem> make(
      const tls_identity& id);

  boost::asio::ssl::context& get(fault::certificate_kind kind = fault::certificate_kind::normal);

 private:
  tls_contexts() = default;
  std::map<fault::certificate_kind, std::unique_ptr<boost::asio::ssl::context>> contexts_;
};

// A client context; verify=false accepts any certificate (for testing mocks).
boost::asio::ssl::context make_client_context(bool verify);
// Trusts the CAs of a PEM file as well; "" or why not, naming the folder a relative path was
// read from (the usual mistake: a path written for another current directory).
std::string trust_ca_file(boost::asio::ssl::context& ctx, const std::string& path);
// What trust_ca_file would say of the file, tried on a context of its own: a mistake in the
// command line is then found before anything is sent.
std::string ca_file_problem(const std::string& path);

// The test CA certificate (PEM) that signs generated certificates.
std::string_view test_ca_pem();

}  // namespace smtpfault::net
