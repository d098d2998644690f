// SASL codecs for AUTH (RFC 4954): base64, PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::proto {

std::string base64_encode(std::string_view bytes);
// Strict: rejects characters outside the alphabet, bad padding and non-zero padding bits.
// "=" alone decodes to the empty string (RFC 4954 zero-length initial response).
std::optional<std::string> base64_decode(std::string_view text);

// AUTH's argument, "mechanism [SP initial-response]" (RFC 4954 4). More than one space between
// the parts is taken as one, as Postfix and Exim take it, and said in extra_spaces.
struct auth_argument {
  std::string_view mechanism;                        // as sent; "" when none
  std::optional<std::string_view> initial_response;  // nullopt: the mechanism came alone
  bool extra_spaces = false;
};
auth_argument split_auth_argument(std::string_view argument);

enum class sasl_mechanism { plain, login, cram_md5, xoauth2, unknown };
sasl_mechanism parse_mechanism(std::string_view name);  // case-insensitive
std::string_view mechanism_name(sasl_mechanism m);

struct sasl_credentials {
  std::string authzid;
  std::string user;
  std::string secret;  // password, CRAM-MD5 hex digest or OAuth token
};

// "authzid\0user\0password"
std::optional<sasl_credentials> parse_plain(std::string_view decoded);
// "user=U\x01auth=Bearer T\x01\x01"
std::optional<sasl_credentials> parse_xoauth2(std::string_view decoded);
// "user <32 lower-case hex digits>"
std::optional<sasl_credentials> parse_cram_md5(std::string_view decoded);

// Lower-case hex HMAC-MD5(key=password, challenge), the CRAM-MD5 response digest.
std::string cram_md5_digest(std::string_view password, std::string_view challenge);
// Lower-case hex MD5 (RFC 1321).
std::string md5_hex(std::string_view bytes);

}  // namespace smtpfault::proto
