// The client half of the DATA phase (RFC 5321 4.1.1.4, 4.5.2): a message body turned into the
// octets sent after the 354, with a chosen line ending. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpfault::proto {

// Every line ending of body (CRLF, bare LF or bare CR) becomes eol; a line starting with "." gets
// another one (dot-stuffing); an unterminated last line is terminated; then "." eol ends the
// data. With eol "\r\n" that is the standard form; with "\n" or "\r" the result ends with
// "\n.\n" or "\r.\r", the SMTP smuggling terminators a strict server must not accept.
// An empty body gives just "." eol.
std::string encode_data(std::string_view body, std::string_view eol = "\r\n");

// A message that has CRLF line endings already, as `smtpfault send` gives it: its other octets
// go as written (a bare CR inside a line stays one, where encode_data would make it a line end).
struct stuffed_message {
  // What goes after the 354: the message dot-stuffed, its last line ended (a CR alone there is
  // the first half of the CRLF), then the "." line that ends the data.
  std::string octets;
  // What SIZE= declares, RFC 1870 4: "the number of octets, including CR-LF pairs, but not the
  // SMTP DATA command's terminating dot or doubled quoting dots": what the server keeps.
  std::size_t size = 0;
};
stuffed_message stuff_message(std::string_view message);

}  // namespace smtpfault::proto
