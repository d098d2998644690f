// Delivery status notifications (RFC 3461): the values of NOTIFY, RET and ENVID as a client asks
// for them, and the checks of NOTIFY, RET and xtext the server shares. Pure.
//
//   dsn_request r{.notify = "SUCCESS,FAILURE", .ret = "HDRS", .envid = "id+1 x"};
//   "MAIL FROM:<a@x>" + dsn_mail_parameters(r)   // " RET=HDRS ENVID=id+2B1+20x"
//   "RCPT TO:<b@y>" + dsn_rcpt_parameters(r)     // " NOTIFY=SUCCESS,FAILURE"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpfault::proto {

// RFC 3461 4.4: an ENVID of at most 100 characters, counted as sent (as xtext), which is also
// what the server counts.
constexpr std::size_t max_envid = 100;

// What is wrong with a NOTIFY value, or "" when nothing: NEVER alone, or a comma list of
// SUCCESS, FAILURE and DELAY, each at most once (RFC 3461 4.1). Any case.
std::string notify_problem(std::string_view value);

// What is wrong with an envelope identifier as a user writes it, before encoding, or "": it is
// printable US-ASCII (RFC 3461 4.4), and at most max_envid characters once encoded.
std::string envid_problem(std::string_view text);

// RET's value: FULL or HDRS, any case (RFC 3461 4.3).
bool valid_ret(std::string_view value);

// RFC 3461 4: '+', '=' and the octets outside 33..126 as "+" and two upper-case hex digits.
std::string xtext_encode(std::string_view text);

// What is wrong with text that should be xtext (ENVID, ORCPT's address, AUTH= of RFC 4954 5),
// or "" when nothing: printable US-ASCII where '+' is followed by two upper-case hex digits.
// utf8: octets over 127 pass, for ORCPT's "utf-8" address type (RFC 6533 3). A raw '=' and
// control characters are the command parser's to refuse.
std::string xtext_problem(std::string_view text, bool utf8 = false);

// What `smtpfault send` asks for; an empty field is not sent.
struct dsn_request {
  std::string notify{};  // upper case, without a notify_problem: on every RCPT
  std::string ret{};     // FULL or HDRS: on MAIL
  std::string envid{};   // as written, without an envid_problem; sent as xtext on MAIL

  bool empty() const { return notify.empty() && ret.empty() && envid.empty(); }
};

// " RET=... ENVID=..." for MAIL, " NOTIFY=..." for RCPT: "" for what was not asked for.
std::string dsn_mail_parameters(const dsn_request& r);
std::string dsn_rcpt_parameters(const dsn_request& r);

// The keywords asked for, for a message: "NOTIFY", "RET and ENVID", "NOTIFY, RET and ENVID".
std::string dsn_keywords(const dsn_request& r);

}  // namespace smtpfault::proto
