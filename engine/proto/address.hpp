// Reverse- and forward-path parsing (RFC 5321 section 4.1.2, RFC 6531 for UTF-8).
#pragma once

#include <string>
#include <string_view>

#include "proto/expected.hpp"
#include "proto/limits.hpp"

namespace smtpfault::proto {

struct mailbox {
  std::string local_part;  // as sent, quotes included for a quoted string
  std::string domain;      // hostname or address literal with brackets, e.g. "[127.0.0.1]"
  bool is_null = false;    // "<>", the null reverse-path
  bool has_utf8 = false;   // non-ASCII octets present: needs SMTPUTF8 (RFC 6531)

  // "local@domain", or "" for the null path.
  std::string address() const;
  // The same, added to out: a reply's text is built with one allocation.
  void append_address(std::string& out) const;
  // Whether address() would be s, without building it.
  bool address_is(std::string_view s) const;
};

enum class path_error {
  syntax,           // 501 5.1.7 / 5.1.3
  local_too_long,   // 501 5.1.7 (> limits::local_part)
  domain_too_long,  // 501 5.1.7 (> limits::domain)
  path_too_long,    // 501 5.1.7 (> limits::path)
};

const char* describe(path_error e);

// Parses "<...>" (angle brackets required). A source route "<@a,@b:x@y>" is accepted and dropped.
// "<>" parses to a null mailbox; the caller decides where it is allowed.
// "<Postmaster>" (no domain) is accepted when allow_postmaster is true (RCPT only).
expected<mailbox, path_error> parse_path(std::string_view text, const limits& lim,
                                         bool allow_postmaster = false);

// Whether s is what EHLO and HELO name (RFC 5321 4.1.1.1): a domain (UTF-8 labels too, RFC
// 6531) or an address literal.
bool is_domain_or_address_literal(std::string_view s);

// Why a name cannot go into a certificate's subjectAltName as a DNS name or an IP address
// ("a b", "a..b", "a,IP:1.2.3.4"); empty when it can.
std::string certificate_name_problem(std::string_view name);

}  // namespace smtpfault::proto
