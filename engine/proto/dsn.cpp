#include "proto/dsn.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>
#include <vector>

#include "proto/ascii.hpp"
#include "proto/reply_stream.hpp"

namespace smtpfault::proto {

std::string notify_problem(std::string_view value) {
  if (value.empty()) return "empty; NEVER, or a list of SUCCESS, FAILURE and DELAY";
  if (iequals(value, "NEVER")) return {};
  static constexpr std::array<std::string_view, 3> conditions{"SUCCESS", "FAILURE", "DELAY"};
  std::array<bool, conditions.size()> seen{};
  for (;;) {
    const auto comma = value.find(',');
    const auto item = value.substr(0, comma);
    if (item.empty()) return "an empty item in the list";
    if (iequals(item, "NEVER")) return "NEVER stands alone, with no SUCCESS, FAILURE or DELAY";
    const auto known = std::find_if(conditions.begin(), conditions.end(),
                                    [&](std::string_view c) { return iequals(c, item); });
    if (known == conditions.end()) {
      return "'" + printable(item, 40) + "' is none of NEVER, SUCCESS, FAILURE and DELAY";
    }
    if (std::exchange(seen[std::distance(conditions.begin(), known)], true)) {
      return std::string(*known) + " given twice";
    }
    if (comma == std::string_view::npos) return {};
    value.remove_prefix(comma + 1);
  }
}

std::string envid_problem(std::string_view text) {
  if (text.empty()) return "empty; an envelope identifier needs some text";
  // A DSN quotes the identifier in its Original-Envelope-Id field, which takes only these.
  const auto odd = std::find_if(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 32 || u > 126;
  });
  if (odd != text.end()) {
    return "only printable US-ASCII may be in it (RFC 3461 4.4), not the octet " +
           printable(std::string_view(&*odd, 1));
  }
  const std::size_t sent = xtext_encode(text).size();
  if (sent > max_envid) {
    return std::to_string(sent) + " characters as sent ('+', '=' and a space take three each); " +
           "RFC 3461 4.4 allows " + std::to_string(max_envid);
  }
  return {};
}

bool valid_ret(std::string_view value) {
  return iequals(value, "FULL") || iequals(value, "HDRS");
}

std::string xtext_problem(std::string_view text, bool utf8) {
  const auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c > 126 && !utf8) return "an octet over 126; 8-bit text is sent as +XX";
    if (c != '+') continue;
    if (i + 2 >= text.size() || !hex(text[i + 1]) || !hex(text[i + 2])) {
      return "\"+\" not followed by two upper-case hex digits";
    }
    i += 2;
  }
  return {};
}

std::string xtext_encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u != '+' && u != '=' && u >= 33 && u <= 126) {
      out += c;
      continue;
    }
    out += '+';
    out += digits[u >> 4];
    out += digits[u & 0xF];
  }
  return out;
}

std::string dsn_mail_parameters(const dsn_request& r) {
  std::string params;
  if (!r.ret.empty()) params += " RET=" + r.ret;
  if (!r.envid.empty()) params += " ENVID=" + xtext_encode(r.envid);
  return params;
}

std::string dsn_rcpt_parameters(const dsn_request& r) {
  return r.notify.empty() ? std::string() : " NOTIFY=" + r.notify;
}

std::string dsn_keywords(const dsn_request& r) {
  std::vector<std::string_view> asked;
  if (!r.notify.empty()) asked.push_back("NOTIFY");
  if (!r.ret.empty()) asked.push_back("RET");
  if (!r.envid.empty()) asked.push_back("ENVID");
  std::string text;
  for (std::size_t i = 0; i < asked.size(); ++i) {
    if (i > 0) text += i + 1 == asked.size() ? " and " : ", ";
    text += asked[i];
  }
  return text;
}

}  // namespace smtpfault::proto
