// ESMTP parameters of MAIL and RCPT (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8,
// RFC 3461 DSN, RFC 4954 AUTH). Parameters of hidden extensions are refused like unknown ones.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

#include "proto/ascii.hpp"
#include "proto/dsn.hpp"
#include "proto/reply.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session {

namespace {

using proto::iequals;

// RFC 1870: size-value ::= 1*20DIGIT. Leading zeros count towards the 20 and say nothing.
bool valid_size(std::string_view s) {
  return !s.empty() && s.size() <= 20 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Whether the decimal digits in s (valid_size) name more than max.
bool size_above(std::string_view s, std::uint64_t max) {
  s.remove_prefix(std::min(s.find_first_not_of('0'), s.size()));
  const std::string limit = std::to_string(max);
  return s.size() != limit.size() ? s.size() > limit.size() : s > limit;
}

// RFC 1869 4.5 and RFC 3461 4: a keyword appears once; the first one repeated, else "".
std::string repeated_keyword(const std::vector<proto::esmtp_param>& params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (params[j].keyword == params[i].keyword) return params[i].keyword;
    }
  }
  return {};
}

// "Bad ENVID value" when the value's shape is wrong (shape_ok false) or it is no xtext, then
// with why; nullopt when it is fine.
std::optional<std::string> bad_xtext(const std::string& keyword, std::string_view value,
                                     bool shape_ok, bool utf8 = false) {
  const std::string why = proto::xtext_problem(value, utf8);
  if (shape_ok && why.empty()) return std::nullopt;
  return "Bad " + keyword + " value" + (why.empty() ? "" : " (xtext, RFC 3461 4: " + why + ")");
}

}  // namespace

// After HELO no service extension was offered, so none of their parameters may be used (RFC 5321
// 4.1.1.11: 555 for parameters the server does not recognize); a client that sends SIZE= or
// BODY= after falling back to HELO is the bug an RFC 821 server makes visible.
bool server_session::params_need_ehlo(const proto::command& cmd) {
  if (extended_ || cmd.params.empty()) return false;
  error_reply(555, "5.5.4",
              "Parameter " + proto::shown_in_reply(cmd.params.front().keyword) +
                  " not recognized after HELO: ESMTP parameters need EHLO");
  return true;
}

bool server_session::check_mail_params(const proto::command& cmd) {
  if (params_need_ehlo(cmd)) return false;
  const auto& ext = opts_.extensions;
  if (auto twice = repeated_keyword(cmd.params); !twice.empty()) {
    return error_reply(501, "5.5.4", "Parameter " + proto::shown_in_reply(twice) + " given twice"),
           false;
  }
  for (const auto& p : cmd.params) {
    const std::string v = p.value.value_or("");
    if (p.keyword == "SIZE" && ext.has(extension::size)) {
      if (!valid_size(v)) return error_reply(501, "5.5.4", "Bad SIZE value"), false;
      auto max = opts_.limits.max_message_size;
      if (max != 0 && size_above(v, max)) {
        return error_reply(552, "5.3.4", "Message size exceeds fixed maximum message size"), false;
      }
    } else if (p.keyword == "BODY") {
      bool ok = iequals(v, "7BIT") || (iequals(v, "8BITMIME") && ext.has(extension::eightbitmime));
      if (!ok)
        return error_reply(555, "5.5.4", "Unsupported BODY type " + proto::shown_in_reply(v)),
               false;
    } else if (p.keyword == "SMTPUTF8" && ext.has(extension::smtputf8)) {
      if (p.value) return error_reply(501, "5.5.4", "SMTPUTF8 takes no value"), false;
    } else if (p.keyword == "RET" && ext.has(extension::dsn)) {
      if (!proto::valid_ret(v)) return error_reply(501, "5.5.4", "Bad RET value"), false;
    } else if (p.keyword == "ENVID" && ext.has(extension::dsn)) {
      if (auto bad = bad_xtext("ENVID", v, !v.empty() && v.size() <= proto::max_envid)) {
        return error_reply(501, "5.5.4", *bad), false;
      }
    } else if (p.keyword == "AUTH" && ext.has(extension::auth)) {
      if (auto bad = bad_xtext("AUTH", v, !v.empty()))
        return error_reply(501, "5.5.4", *bad), false;
    } else {
      return error_reply(555, "5.5.4", "Unsupported parameter " + proto::shown_in_reply(p.keyword)),
             false;
    }
  }
  return true;
}

bool server_session::check_rcpt_params(const proto::command& cmd) {
  if (params_need_ehlo(cmd)) return false;
  if (auto twice = repeated_keyword(cmd.params); !twice.empty()) {
    return error_reply(501, "5.5.4", "Parameter " + proto::shown_in_reply(twice) + " given twice"),
           false;
  }
  for (const auto& p : cmd.params) {
    const std::string v = p.value.value_or("");
    if (!opts_.extensions.has(extension::dsn)) {
      return error_reply(555, "5.5.4", "Unsupported parameter " + proto::shown_in_reply(p.keyword)),
             false;
    }
    if (p.keyword == "NOTIFY") {
      if (!proto::notify_problem(v).empty())
        return error_reply(501, "5.5.4", "Bad NOTIFY value"), false;
    } else if (p.keyword == "ORCPT") {
      // addr-type ";" xtext, both non-empty (RFC 3461 4.2).
      const auto semicolon = v.find(';');
      const bool utf8 = semicolon != std::string::npos && iequals(v.substr(0, semicolon), "utf-8");
      const auto address = semicolon == std::string::npos ? "" : v.substr(semicolon + 1);
      if (auto bad = bad_xtext("ORCPT", address, semicolon != 0 && !address.empty(), utf8)) {
        return error_reply(501, "5.5.4", *bad), false;
      }
    } else {
      return error_reply(555, "5.5.4", "Unsupported parameter " + proto::shown_in_reply(p.keyword)),
             false;
    }
  }
  return true;
}

}  // namespace smtpfault::session
