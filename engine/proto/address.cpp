#include "proto/address.hpp"

#include <arpa/inet.h>

#include <cctype>

#include "proto/ascii.hpp"
#include "proto/utf8.hpp"

namespace smtpfault::proto {

namespace {

bool is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// RFC 5322 atext; octets >= 0x80 are UTF-8 (RFC 6531) and reported via has_utf8.
bool is_atext(unsigned char c) {
  static constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return is_alpha(c) || is_digit(c) || c >= 0x80 || specials.find(char(c)) != specials.npos;
}

// Dot-string: atom *("." atom). Returns false on an empty atom (leading, trailing or double dot).
bool valid_dot_string(std::string_view s, bool& utf8) {
  if (s.empty()) return false;
  bool atom_empty = true;
  for (unsigned char c : s) {
    if (c == '.') {
      if (atom_empty) return false;
      atom_empty = true;
      continue;
    }
    if (!is_atext(c)) return false;
    if (c >= 0x80) utf8 = true;
    atom_empty = false;
  }
  return !atom_empty;
}

// Quoted-string with qtextSMTP (32-33, 35-91, 93-126, UTF-8) and quoted pairs "\" 32-126.
bool valid_quoted_string(std::string_view s, bool& utf8) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    unsigned char c = s[i];
    if (c == '\\') {
      if (i + 2 >= s.size()) return false;  // the escaped octet cannot be the closing quote
      unsigned char e = s[++i];
      if (e < 32 || e > 126) return false;
      continue;
    }
    if (c == '"' || c < 32 || c == 127) return false;
    if (c >= 0x80) utf8 = true;
  }
  return true;
}

// Length of a quoted string starting at s[0] == '"', or npos when unterminated.
std::size_t quoted_length(std::string_view s) {
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

bool valid_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    unsigned value = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 3)
      value = value * 10 + (s[i++] - '0');
    if (i == start || value > 255) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

// RFC 5321 4.1.3's IPv6-addr is RFC 4291's text form, which inet_pton reads: eight groups, or
// fewer around one "::", with an optional IPv4 tail ("1::2::3" and nine groups are not).
bool valid_ipv6(std::string_view s) {
  constexpr std::size_t longest = 45;  // eight groups with an IPv4 tail: INET6_ADDRSTRLEN - 1
  if (s.size() > longest) return false;
  char text[longest + 1];
  s.copy(text, s.size());
  text[s.size()] = '\0';
  unsigned char addr[16];
  return inet_pton(AF_INET6, text, addr) == 1;
}

// "[1.2.3.4]", "[IPv6:...]" or a general literal "[tag:content]" (RFC 5321 4.1.3).
bool valid_address_literal(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  std::string_view body = s.substr(1, s.size() - 2);
  if (body.size() > 5 && iequals(body.substr(0, 5), "IPv6:")) return valid_ipv6(body.substr(5));
  std::size_t colon = body.find(':');
  if (colon == std::string_view::npos) return valid_ipv4(body);
  std::string_view tag = body.substr(0, colon), content = body.substr(colon + 1);
  if (tag.empty() || content.empty() || tag.back() == '-') return false;
  for (unsigned char c : tag) {
    if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
  }
  for (unsigned char c : content) {
    if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\') return false;
  }
  return true;
}

// Dot-separated labels of letters, digits and inner hyphens; UTF-8 octets count as letters. An
// ASCII label has at most 63 octets (RFC 1035 2.3.4); a UTF-8 one is judged by its A-label,
// which is not worked out here.
bool valid_domain_name(std::string_view s, bool& utf8) {
  if (s.empty()) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    bool ascii = true;
    for (unsigned char c : label) {
      if (!is_alpha(c) && !is_digit(c) && c != '-' && c < 0x80) return false;
      if (c >= 0x80) utf8 = true, ascii = false;
    }
    if (ascii && label.size() > 63) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool valid_domain(std::string_view s, bool& utf8) {
  if (!s.empty() && s.front() == '[') return valid_address_literal(s);
  return valid_domain_name(s, utf8);
}

// Drops "@a,@b:" (RFC 5321 A-d-l, obsolete but still to be accepted). Returns false when the
// route is malformed.
bool strip_source_route(std::string_view& inner) {
  if (inner.empty() || inner.front() != '@') return true;
  std::size_t colon = inner.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view route = inner.substr(0, colon);
  std::size_t start = 0;
  while (start <= route.size()) {
    std::size_t comma = route.find(',', start);
    std::size_t end = comma == std::string_view::npos ? route.size() : comma;
    std::string_view hop = route.substr(start, end - start);
    bool ignored = false;
    if (hop.size() < 2 || hop.front() != '@' || !valid_domain(hop.substr(1), ignored)) return false;
    start = end + 1;
  }
  inner.remove_prefix(colon + 1);
  return true;
}

}  // namespace

bool is_domain_or_address_literal(std::string_view s) {
  bool utf8 = false;
  return valid_domain(s, utf8);
}

std::string mailbox::address() const {
  std::string out;
  append_address(out);
  return out;
}

bool mailbox::address_is(std::string_view s) const {
  if (is_null) return s.empty();
  if (domain.empty()) return s == local_part;
  return s.size() == local_part.size() + 1 + domain.size() && s.starts_with(local_part) &&
         s[local_part.size()] == '@' && s.ends_with(domain);
}

void mailbox::append_address(std::string& out) const {
  if (is_null) return;
  out.reserve(out.size() + local_part.size() + 1 + domain.size());
  out += local_part;
  if (domain.empty()) return;
  out += '@';
  out += domain;
}

const char* describe(path_error e) {
  switch (e) {
    case path_error::syntax:
      return "bad address syntax";
    case path_error::local_too_long:
      return "local part too long";
    case path_error::domain_too_long:
      return "domain too long";
    case path_error::path_too_long:
      return "path too long";
  }
  return "bad address";
}

expected<mailbox, path_error> parse_path(std::string_view text, const limits& lim,
                                         bool allow_postmaster) {
  if (text.size() < 2 || text.front() != '<' || text.back() != '>') {
    return unexpected{path_error::syntax};
  }
  std::string_view inner = text.substr(1, text.size() - 2);
  mailbox box;
  if (inner.empty()) {
    box.is_null = true;
    return box;
  }
  if (allow_postmaster && iequals(inner, "postmaster")) {
    box.local_part = std::string(inner);
    return box;
  }
  if (!strip_source_route(inner)) return unexpected{path_error::syntax};

  // The local part ends at the last '@' outside a quoted string.
  std::size_t local_len = std::string_view::npos;
  if (!inner.empty() && inner.front() == '"') {
    local_len = quoted_length(inner);
  } else {
    local_len = inner.find('@');
  }
  if (local_len == std::string_view::npos || local_len >= inner.size() || inner[local_len] != '@') {
    return unexpected{path_error::syntax};
  }
  std::string_view local = inner.substr(0, local_len);
  std::string_view domain = inner.substr(local_len + 1);
  bool utf8 = false;
  bool local_ok = !local.empty() && local.front() == '"' ? valid_quoted_string(local, utf8)
                                                         : valid_dot_string(local, utf8);
  if (!local_ok || !valid_domain(domain, utf8)) return unexpected{path_error::syntax};
  // RFC 6532 section 3.1: non-ASCII octets must form well-formed UTF-8 (no overlongs,
  // surrogates or stray continuation octets), or the address is not an address.
  if (utf8 && (!valid_utf8(local) || !valid_utf8(domain))) return unexpected{path_error::syntax};
  if (local.size() > lim.local_part) return unexpected{path_error::local_too_long};
  if (domain.size() > lim.domain) return unexpected{path_error::domain_too_long};
  if (text.size() > lim.path) return unexpected{path_error::path_too_long};
  box.local_part = std::string(local);
  box.domain = std::string(domain);
  box.has_utf8 = utf8;
  return box;
}

std::string certificate_name_problem(std::string_view name) {
  const auto bad = [&](std::string_view why) {
    return "cannot go into a certificate: '" + std::string(name) + "' (" + std::string(why) + ")";
  };
  if (name.empty()) return bad("empty");
  if (name.find(':') != std::string_view::npos) {  // an IPv6 literal
    unsigned char addr[16];
    return inet_pton(AF_INET6, std::string(name).c_str(), addr) == 1 ? std::string()
                                                                     : bad("not an IPv6 address");
  }
  if (name.find_first_not_of("0123456789.") == std::string_view::npos) {  // an IPv4 literal
    unsigned char addr[4];
    return inet_pton(AF_INET, std::string(name).c_str(), addr) == 1 ? std::string()
                                                                    : bad("not an IPv4 address");
  }
  if (name.size() > 253) return bad("longer than 253 octets");
  std::size_t label = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    const char c = i < name.size() ? name[i] : '.';
    if (c == '.') {
      if (label == 0) return bad("an empty label");
      if (label > 63) return bad("a label longer than 63 octets");
      if (name[i - 1] == '-' || name[i - label] == '-')
        return bad("a label starts or ends with '-'");
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || (c == '*' && i == 0)) {
      ++label;
    } else {
      return bad("DNS names hold letters, digits, '-' and '.'");
    }
  }
  return {};
}

}  // namespace smtpfault::proto
