// Where a check's finding is in the transcript, as its detail names it, and which exchanges
// belong to a mail transaction: shared by the built-in checks.
#pragma once

#include <string>

#include "capture/session_analysis.hpp"

namespace smtpfault::script {

inline std::string where(const capture::session_summary& s, std::size_t line) {
  return "session " + s.id + ", transcript line " + std::to_string(line);
}

// Where a reply is: its own line, which is the command's when there was no reply.
inline std::string where_reply(const capture::session_summary& s, const capture::exchange& x) {
  return where(s, x.reply_line != 0 ? x.reply_line : x.line);
}

inline bool is_transaction(const capture::exchange& x) {
  return x.verb == "MAIL" || x.verb == "RCPT" || x.verb == "DATA" || x.verb == "BDAT" ||
         x.command == "<end of data>" || x.command == "<no command>";
}

}  // namespace smtpfault::script
