// MD5 (RFC 1321) and HMAC-MD5 (RFC 2104) for CRAM-MD5 only: proto links no crypto library.
// MD5 is broken for security purposes; it is here because RFC 2195 requires it.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace smtpfault::proto {

using md5_digest = std::array<std::uint8_t, 16>;

md5_digest md5(std::string_view bytes);
md5_digest hmac_md5(std::string_view key, std::string_view message);

}  // namespace smtpfault::proto
