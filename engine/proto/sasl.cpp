#include "proto/sasl.hpp"

#include <algorithm>
#include <array>

#include "proto/ascii.hpp"
#include "proto/md5.hpp"

namespace smtpfault::proto {

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string to_hex(const md5_digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : d) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

// Decodes one quad; pad is the number of '=' at its end (0-2). Returns false on bad input.
bool decode_quad(std::string_view q, std::size_t pad, std::string& out) {
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    int v = i < 4 - pad ? b64_value(q[i]) : 0;
    if (v < 0) return false;
    bits = bits << 6 | static_cast<std::uint32_t>(v);
  }
  // Non-zero bits under the padding would let two encodings mean the same bytes.
  if ((pad == 1 && (bits & 0xff) != 0) || (pad == 2 && (bits & 0xffff) != 0)) return false;
  out.push_back(static_cast<char>(bits >> 16));
  if (pad < 2) out.push_back(static_cast<char>(bits >> 8));
  if (pad < 1) out.push_back(static_cast<char>(bits));
  return true;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::size_t n = bytes.size() - i < 3 ? bytes.size() - i : 3;
    std::uint32_t bits = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      std::uint32_t byte = k < n ? static_cast<unsigned char>(bytes[i + k]) : 0;
      bits = bits << 8 | byte;
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out.push_back(k <= n ? alphabet[(bits >> (18 - 6 * k)) & 0x3f] : '=');
    }
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text == "=") return std::string{};
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::string_view q = text.substr(i, 4);
    bool last = i + 4 == text.size();
    std::size_t pad = 0;
    if (last && q[3] == '=') pad = q[2] == '=' ? 2 : 1;
    if (!decode_quad(q, pad, out)) return std::nullopt;
  }
  return out;
}

auth_argument split_auth_argument(std::string_view argument) {
  auth_argument out;
  const auto skip_spaces = [&](std::string_view v) {
    const auto start = std::min(v.find_first_not_of(' '), v.size());
    out.extra_spaces = out.extra_spaces || start > 0;
    return v.substr(start);
  };
  argument = skip_spaces(argument);
  const auto space = argument.find(' ');
  out.mechanism = argument.substr(0, space);
  if (space != std::string_view::npos)
    out.initial_response = skip_spaces(argument.substr(space + 1));
  return out;
}

sasl_mechanism parse_mechanism(std::string_view name) {
  for (auto m : {sasl_mechanism::plain, sasl_mechanism::login, sasl_mechanism::cram_md5,
                 sasl_mechanism::xoauth2}) {
    if (iequals(name, mechanism_name(m))) return m;
  }
  return sasl_mechanism::unknown;
}

std::string_view mechanism_name(sasl_mechanism m) {
  switch (m) {
    case sasl_mechanism::plain:
      return "PLAIN";
    case sasl_mechanism::login:
      return "LOGIN";
    case sasl_mechanism::cram_md5:
      return "CRAM-MD5";
    case sasl_mechanism::xoauth2:
      return "XOAUTH2";
    case sasl_mechanism::unknown:
      break;
  }
  return {};
}

std::optional<sasl_credentials> parse_plain(std::string_view decoded) {
  std::size_t first = decoded.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  std::size_t second = decoded.find('\0', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (decoded.find('\0', second + 1) != std::string_view::npos) return std::nullopt;
  sasl_credentials c;
  c.authzid = std::string(decoded.substr(0, first));
  c.user = std::string(decoded.substr(first + 1, second - first - 1));
  c.secret = std::string(decoded.substr(second + 1));
  if (c.user.empty()) return std::nullopt;
  return c;
}

// Fields may come in any order; unknown ones (host=, port=) are ignored.
std::optional<sasl_credentials> parse_xoauth2(std::string_view decoded) {
  constexpr std::string_view end = "\x01\x01";
  if (decoded.size() < end.size() || decoded.substr(decoded.size() - end.size()) != end) {
    return std::nullopt;
  }
  std::string_view fields = decoded.substr(0, decoded.size() - end.size());
  std::optional<std::string> user, token;
  while (!fields.empty()) {
    std::size_t sep = fields.find('\x01');
    std::string_view f = fields.substr(0, sep);
    fields = sep == std::string_view::npos ? std::string_view{} : fields.substr(sep + 1);
    if (f.empty()) return std::nullopt;
    if (f.substr(0, 5) == "user=") {
      if (user) return std::nullopt;
      user = std::string(f.substr(5));
    } else if (f.size() >= 12 && f.substr(0, 5) == "auth=" && iequals(f.substr(5, 7), "Bearer ")) {
      if (token) return std::nullopt;
      token = std::string(f.substr(12));
    }
  }
  if (!user || !token || user->empty() || token->empty()) return std::nullopt;
  sasl_credentials c;
  c.user = std::move(*user);
  c.secret = std::move(*token);
  return c;
}

// The user name may contain spaces, so the digest is what follows the last one. Upper-case
// hex is accepted and folded, so the secret compares equal to cram_md5_digest().
std::optional<sasl_credentials> parse_cram_md5(std::string_view decoded) {
  std::size_t sp = decoded.rfind(' ');
  if (sp == std::string_view::npos || sp == 0) return std::nullopt;
  std::string_view hex = decoded.substr(sp + 1);
  if (hex.size() != 32) return std::nullopt;
  sasl_credentials c;
  c.user = std::string(decoded.substr(0, sp));
  for (char h : hex) {
    if (h >= 'A' && h <= 'F') h = static_cast<char>(h - 'A' + 'a');
    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f'))) return std::nullopt;
    c.secret.push_back(h);
  }
  return c;
}

std::string cram_md5_digest(std::string_view password, std::string_view challenge) {
  return to_hex(hmac_md5(password, challenge));
}

std::string md5_hex(std::string_view bytes) {
  return to_hex(md5(bytes));
}

}  // namespace smtpfault::proto
