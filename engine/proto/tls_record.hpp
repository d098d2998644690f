// Whether what a server sent first could come from a port that speaks TLS from the first byte
// (RFC 8314 implicit TLS): such a port says nothing until the client's hello, and what it does
// send is a TLS record. Readable text (an SMTP greeting, an HTTP reply) is not. Pure.
#pragma once

#include <cstddef>
#include <string_view>

namespace smtpfault::proto {

// The octets a record header needs to be told from text: its content type, then the major
// byte of its version.
constexpr std::size_t tls_record_sniff = 2;

// first: the first octets the server sent, at most tls_record_sniff; none at all counts. A
// record starts with a content type from 20 to 23 (change_cipher_spec, alert, handshake,
// application_data) and a version 3.x (RFC 8446 5.1: legacy_record_version).
inline bool could_be_tls(std::string_view first) {
  if (first.empty()) return true;
  const auto type = static_cast<unsigned char>(first[0]);
  return type >= 20 && type <= 23 && (first.size() < 2 || first[1] == 3);
}

}  // namespace smtpfault::proto
