// Typed SMTP replies (RFC 5321 section 4.2, enhanced codes RFC 3463 / RFC 2034).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/expected.hpp"

namespace smtpfault::proto {

struct reply {
  int code = 250;
  std::string enhanced;            // "2.0.0", or "" for none
  std::vector<std::string> lines;  // at least one; "" is allowed

  reply() = default;
  // Not lines{std::move(text)}: an initializer list is const, so that would copy the text.
  reply(int c, std::string enh, std::string text) : code(c), enhanced(std::move(enh)) {
    lines.push_back(std::move(text));
  }
  reply(int c, std::string enh, std::vector<std::string> text)
      : code(c), enhanced(std::move(enh)), lines(std::move(text)) {}

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
};

// Text the client sent, as a reply may show it: a reply line is at most 512 octets (RFC 5321
// 4.5.3.1.5), and a control octet (a CR, a NUL, an escape sequence) would reach the client's
// parser and terminal, so each octet outside printable ASCII becomes '?' and text past longest
// octets is cut, ending in "...".
std::string shown_in_reply(std::string_view client_text, std::size_t longest = 64);

// The usual text of a reply code (RFC 5321 4.2.2 and the AUTH and STARTTLS RFCs), for a fault
// that gives a code alone; "" for a code without one.
std::string_view default_reply_text(int code);

// Whether s is exactly an RFC 3463 status code of a success or failure class: "4.7.1".
bool is_enhanced_code(std::string_view s);

// Appends the wire form: "250-2.0.0 first\r\n250 2.0.0 last\r\n". When with_enhanced is false,
// or the reply has no enhanced code, lines carry only the basic code. An empty line list
// formats as one line with no text.
void append_wire(std::string& out, const reply& r, bool with_enhanced = true);
std::string to_wire(const reply& r, bool with_enhanced = true);

// Client side: whether a 250 reply to EHLO offers the keyword (case-insensitive, whole word; the
// first line is the server's name, not a keyword).
bool ehlo_offers(const reply& ehlo, std::string_view keyword);
// Client side: what follows an offered keyword and its spaces ("52428800" of "SIZE 52428800", ""
// after a bare keyword), or nullopt when it is not offered.
std::optional<std::string_view> ehlo_parameters(const reply& ehlo, std::string_view keyword);

// Client side: assembles replies from received lines.
class reply_reader {
 public:
  enum class status { need_more, complete, malformed };
  // Feed one line without CRLF. After complete or malformed, take() the reply and start over.
  status feed_line(std::string_view line);
  reply take();
  const std::string& error() const { return error_; }
  // Lines of a multi-line reply received so far, before its last line.
  std::size_t lines_so_far() const { return started_ ? partial_.lines.size() : 0; }

  // A multi-line reply that goes on beyond these is malformed: a server sending continuation
  // lines for ever must not grow the client without bound (RFC 5321 sets no limit; real
  // replies have a few dozen lines).
  static constexpr std::size_t max_lines = 1000;
  static constexpr std::size_t max_octets = 1024 * 1024;

 private:
  reply partial_;
  bool started_ = false;
  std::size_t octets_ = 0;
  std::string error_;
};

}  // namespace smtpfault::proto
