#include "proto/command.hpp"

#include <array>
#include <optional>
#include <utility>

#include "proto/ascii.hpp"
namespace smtpfault::proto {

namespace {

struct verb_entry {
  std::string_view name;
  verb kind;
};

constexpr std::array<verb_entry, 15> verbs{{
    {"HELO", verb::helo},
    {"EHLO", verb::ehlo},
    {"LHLO", verb::lhlo},
    {"MAIL", verb::mail},
    {"RCPT", verb::rcpt},
    {"DATA", verb::data},
    {"BDAT", verb::bdat},
    {"RSET", verb::rset},
    {"NOOP", verb::noop},
    {"QUIT", verb::quit},
    {"VRFY", verb::vrfy},
    {"EXPN", verb::expn},
    {"HELP", verb::help},
    {"STARTTLS", verb::starttls},
    {"AUTH", verb::auth},
}};

bool is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// What is wrong with a command's arguments; the command is built in place, not passed along by
// value, since moving one (four strings and a vector) cost a tenth of parsing it.
using problem = std::optional<command_failure>;

command_failure fail(command_error e, const command& c, std::string detail) {
  return {e, c.kind, std::move(detail), c.verb_text};
}

// Splits "<path>[ params]" at the '>' that closes the path; a quoted local part may contain '>'.
bool split_path(std::string_view rest, std::string_view& path, std::string_view& params) {
  if (rest.empty() || rest.front() != '<') return false;
  bool quoted = false;
  for (std::size_t i = 1; i < rest.size(); ++i) {
    char c = rest[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '>' && !quoted) {
      path = rest.substr(0, i + 1);
      params = rest.substr(i + 1);
      return true;
    }
  }
  return false;
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
bool valid_keyword(std::string_view k) {
  if (k.empty() || !is_alnum(k.front())) return false;
  for (unsigned char c : k) {
    if (!is_alnum(c) && c != '-') return false;
  }
  return true;
}

// esmtp-value = 1*(%d33-60 / %d62-126), widened by RFC 6531 to UTF-8 octets.
bool valid_value(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v) {
    if (c == '=' || c == 127 || (c < 33)) return false;
  }
  return true;
}

// Space-separated "KEY[=VALUE]" items. Repeated spaces are tolerated, as real clients send them.
bool parse_params(std::string_view text, std::vector<esmtp_param>& out) {
  while (!text.empty()) {
    std::size_t sp = text.find(' ');
    std::string_view item = text.substr(0, sp);
    text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    if (!valid_keyword(key)) return false;
    esmtp_param p;
    for (char c : key)
      p.keyword.push_back(ascii_upper(c));
    if (eq != std::string_view::npos) {
      std::string_view value = item.substr(eq + 1);
      if (!valid_value(value)) return false;
      p.value = std::string(value);
    }
    out.push_back(std::move(p));
  }
  return true;
}

// MAIL FROM:<path> [params] and RCPT TO:<path> [params].
problem parse_mail_rcpt(command& c, const limits& lim) {
  bool is_mail = c.kind == verb::mail;
  std::string_view prefix = is_mail ? "FROM:" : "TO:";
  std::string_view rest = c.argument;
  if (!istarts_with(rest, prefix)) {
    return fail(command_error::syntax, c,
                is_mail ? "expected MAIL FROM:<address>" : "expected RCPT TO:<address>");
  }
  rest.remove_prefix(prefix.size());
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);  // common, tolerated
  if (rest.empty()) {
    return fail(command_error::syntax, c,
                is_mail ? "expected MAIL FROM:<address>" : "expected RCPT TO:<address>");
  }
  std::string_view path, params;
  if (!split_path(rest, path, params) || (!params.empty() && params.front() != ' ')) {
    return fail(command_error::bad_path, c, "bad address syntax");
  }
  auto box = parse_path(path, lim, !is_mail);
  if (!box) return fail(command_error::bad_path, c, describe(box.error()));
  if (!is_mail && box->is_null) return fail(command_error::bad_path, c, "null recipient");
  c.path = std::move(*box);
  if (!parse_params(params, c.params)) {
    return fail(command_error::bad_parameter, c, "malformed ESMTP parameter");
  }
  return std::nullopt;
}

problem check_arguments(command& c, bool has_argument, const limits& lim) {
  switch (c.kind) {
    case verb::helo:
    case verb::ehlo:
    case verb::lhlo:
      if (c.argument.find_first_not_of(' ') == std::string::npos) {
        return fail(command_error::syntax, c, "domain or address literal required");
      }
      return std::nullopt;
    case verb::mail:
    case verb::rcpt:
      return parse_mail_rcpt(c, lim);
    case verb::data:
    case verb::rset:
    case verb::quit:
    case verb::starttls:
      if (has_argument) return fail(command_error::syntax, c, "no arguments allowed");
      return std::nullopt;
    case verb::vrfy:
    case verb::expn:
    case verb::auth:
      if (c.argument.find_first_not_of(' ') == std::string::npos) {
        return fail(command_error::syntax, c, "argument required");
      }
      return std::nullopt;
    default:
      return std::nullopt;  // NOOP, HELP and BDAT: the argument is kept raw
  }
}

}  // namespace

verb verb_named(std::string_view word) {
  for (const auto& e : verbs) {
    if (iequals(word, e.name)) return e.kind;
  }
  return verb::unknown;
}

std::string_view verb_name(verb v) {
  for (const auto& e : verbs) {
    if (e.kind == v) return e.name;
  }
  return {};
}

const esmtp_param* command::find_param(std::string_view keyword) const {
  for (const auto& p : params) {
    if (iequals(p.keyword, keyword)) return &p;
  }
  return nullptr;
}

expected<command, command_failure> parse_command(std::string_view line, const limits& lim) {
  command c;
  if (line.empty()) return unexpected{fail(command_error::syntax, c, "empty command")};
  std::size_t sp = line.find(' ');
  bool has_argument = sp != std::string_view::npos;
  c.verb_text = std::string(line.substr(0, sp));
  if (has_argument) c.argument = std::string(line.substr(sp + 1));
  c.kind = verb_named(c.verb_text);
  if (c.kind == verb::unknown) {
    return unexpected{fail(command_error::unknown_verb, c, "command unrecognized")};
  }
  if (auto wrong = check_arguments(c, has_argument, lim)) return unexpected{std::move(*wrong)};
  return c;
}

}  // namespace smtpfault::proto
