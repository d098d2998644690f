// The client half of the DATA phase (RFC 5321 4.1.1.4, 4.5.2): a message body turned into the
// octets sent after the 354, with a chosen line ending. Pure.
#pragma once

#include <string>
#include <string_view>

namespace smtpfault::proto {

// Every line ending of body (CRLF, bare LF or bare CR) becomes eol; a line starting with "." gets
// another one (dot-stuffing); an unterminated last line is terminated; then "." eol ends the
// data. With eol "\r\n" that is the standard form; with "\n" or "\r" the result ends with
// "\n.\n" or "\r.\r", the SMTP smuggling terminators a strict server must not accept.
// An empty body gives just "." eol.
std::string encode_data(std::string_view body, std::string_view eol = "\r\n");

}  // namespace smtpfault::proto
