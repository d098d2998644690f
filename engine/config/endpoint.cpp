// Endpoint text forms: parse_endpoint (declared in loader.hpp) lives next to its inverse,
// endpoint::to_string, so the two cannot drift apart.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "config/loader.hpp"
#include "config/settings.hpp"
#include "proto/address.hpp"

namespace smtpfault::config {
namespace {

constexpr std::string_view expected_form = "expected HOST:PORT or [IPV6]:PORT";

proto::unexpected<std::string> bad_address(std::string_view text, std::string_view why) {
  std::string message = "bad address '";
  message.append(text);
  message.append("' (");
  message.append(why);
  message.append(")");
  return proto::unexpected{std::move(message)};
}

// Host names, IPv4 literals and wildcard addresses; anything else (spaces, slashes, a scheme
// such as "smtp://") is a typo that should fail here rather than later in the resolver.
bool plain_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Hex digits and colons, dotted IPv4 tails ("::ffff:1.2.3.4") and a zone ("fe80::1%eth0").
bool ipv6_char(char c) {
  return plain_host_char(c) || c == ':' || c == '%';
}

}  // namespace

std::string endpoint::to_string() const {
  std::string text;
  if (host.find(':') != std::string::npos) {
    text = "[" + host + "]";
  } else {
    text = host;
  }
  text += ":" + std::to_string(port);
  return text;
}

namespace {

// lowest_port: 0 for a listener (any free port, read back), 1 for a place to connect to. One
// range in every message, so a user who fixed the number is not then told another.
proto::expected<endpoint, std::string> parse_endpoint_from(std::string_view text,
                                                           unsigned lowest_port) {
  std::string_view host;
  std::string_view port;
  // Two addresses where one goes ("A:P,B:P" in a TOML string, or for the API's one address).
  if (text.find_first_of(", \t") != std::string_view::npos) {
    return bad_address(text,
                       "more than one address in one value: give one here; listeners are listed "
                       "in a TOML array ([\"A:P\", \"B:P\"]) or by giving the flag again");
  }
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad_address(text, "missing ']'");
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.starts_with(':')) return bad_address(text, expected_form);
    port = rest.substr(1);
    if (host.empty() || host.find(':') == std::string_view::npos ||
        !std::all_of(host.begin(), host.end(), ipv6_char)) {
      return bad_address(text, "brackets must hold an IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad_address(text, expected_form);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad_address(text, "an IPv6 address needs brackets, as in [::1]:2525");
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), plain_host_char)) {
      return bad_address(text, expected_form);
    }
  }
  unsigned value = 0;
  const auto* end = port.data() + port.size();
  const auto [ptr, ec] = std::from_chars(port.data(), end, value);
  if (port.empty() || port.size() > 5 || ec != std::errc{} || ptr != end || value > 65535 ||
      value < lowest_port) {
    return bad_address(
        text, "the port must be a number from " + std::to_string(lowest_port) + " to 65535");
  }
  return endpoint{std::string(host), static_cast<std::uint16_t>(value)};
}

}  // namespace

// Port 0 is allowed on purpose: tests bind ephemeral ports and read the real one back.
proto::expected<endpoint, std::string> parse_endpoint(std::string_view text) {
  return parse_endpoint_from(text, 0);
}

// Port 0 means "any free port" to a listener; to connect to, it names nothing.
proto::expected<endpoint, std::string> parse_target(std::string_view text) {
  return parse_endpoint_from(text, 1);
}

}  // namespace smtpfault::config
