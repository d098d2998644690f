// SMTP command line parsing (RFC 5321 section 4.1, ESMTP parameters section 4.1.2).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/address.hpp"
#include "proto/expected.hpp"
#include "proto/limits.hpp"

namespace smtpfault::proto {

enum class verb {
  helo,
  ehlo,
  lhlo,
  mail,
  rcpt,
  data,
  bdat,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  starttls,
  auth,
  unknown,
};

// Upper-case name of a verb ("MAIL"); "" for unknown.
std::string_view verb_name(verb v);
// The verb a word names, any case ("rcpt"); verb::unknown for others.
verb verb_named(std::string_view word);

struct esmtp_param {
  std::string keyword;               // upper-cased
  std::optional<std::string> value;  // as sent
};

struct command {
  verb kind = verb::unknown;
  std::string verb_text;  // the verb as the client sent it (any case), also for unknown verbs
  std::string argument;   // everything after the verb and one space, as sent
  // The line ended in a bare LF, not CRLF (RFC 5321 2.3.8). Set by whoever read the line: the
  // parser sees the line without its end.
  bool bare_lf = false;
  // MAIL and RCPT only:
  mailbox path;
  std::vector<esmtp_param> params;

  // The value of a parameter by upper-case keyword, or nullopt if absent.
  const esmtp_param* find_param(std::string_view keyword) const;
};

enum class command_error {
  unknown_verb,   // 500 5.5.1
  syntax,         // 501 5.5.4: wrong or missing arguments
  bad_path,       // 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT)
  bad_parameter,  // 501 5.5.4: malformed ESMTP parameter
};

struct command_failure {
  command_error error;
  verb kind = verb::unknown;  // which verb it was, when recognised
  std::string detail;         // human text for the reply
  std::string verb_text;      // the verb as sent, also for unknown verbs (for the transcript)
};

// Parses one command line, without its CRLF. Verbs are case-insensitive.
// Never throws; any octet sequence yields a command or a failure. An empty line fails with
// command_error::syntax and kind verb::unknown (reply 500 5.5.2). The line length is the line
// reader's business, not checked here; BDAT's argument is left for parse_bdat_args.
expected<command, command_failure> parse_command(std::string_view line, const limits& lim);

}  // namespace smtpfault::proto
