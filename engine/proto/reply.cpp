#include "proto/reply.hpp"

#include <charconv>
#include <cstring>
#include <iterator>

#include "proto/ascii.hpp"

namespace smtpfault::proto {

namespace {

// Length of a leading "class.subject.detail" (RFC 3463: 1*3 digits after the class) followed
// by SP or the end of text, or 0 when there is none or its class differs from the reply's.
std::size_t enhanced_length(std::string_view text, int code) {
  if (text.size() < 5 || text[0] != static_cast<char>('0' + code / 100) || text[1] != '.') {
    return 0;
  }
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 3)
      ++i;
    if (i == start) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

}  // namespace

std::string shown_in_reply(std::string_view client_text, std::size_t longest) {
  const bool cut = client_text.size() > longest;
  std::string shown(cut ? client_text.substr(0, longest - 3) : client_text);
  for (auto& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  if (cut) shown += "...";
  return shown;
}

std::string_view default_reply_text(int code) {
  struct known {
    int code;
    std::string_view text;
  };
  static constexpr known texts[] = {
      {211, "System status"},
      {214, "Help"},
      {220, "Service ready"},
      {221, "Closing connection"},
      {235, "Authentication successful"},
      {250, "Ok"},
      {251, "User not local; will forward"},
      {252, "Cannot VRFY user"},
      {354, "End data with <CR><LF>.<CR><LF>"},
      {421, "Service not available, closing transmission channel"},
      {450, "Requested mail action not taken: mailbox unavailable"},
      {451, "Requested action aborted: local error in processing"},
      {452, "Requested action not taken: insufficient system storage"},
      {454, "TLS not available due to temporary reason"},
      {500, "Syntax error, command unrecognized"},
      {501, "Syntax error in parameters or arguments"},
      {502, "Command not implemented"},
      {503, "Bad sequence of commands"},
      {504, "Command parameter not implemented"},
      {521, "Server does not accept mail"},
      {530, "Authentication required"},
      {534, "Authentication mechanism is too weak"},
      {535, "Authentication credentials invalid"},
      {538, "Encryption required for requested authentication mechanism"},
      {550, "Requested action not taken: mailbox unavailable"},
      {551, "User not local"},
      {552, "Requested mail action aborted: exceeded storage allocation"},
      {553, "Requested action not taken: mailbox name not allowed"},
      {554, "Transaction failed"},
      {555, "MAIL FROM/RCPT TO parameters not recognized or not implemented"},
  };
  for (const auto& k : texts)
    if (k.code == code) return k.text;
  return "";
}

bool is_enhanced_code(std::string_view s) {
  if (s.empty() || (s[0] != '2' && s[0] != '4' && s[0] != '5')) return false;
  return enhanced_length(s, (s[0] - '0') * 100) == s.size();
}

void append_wire(std::string& out, const reply& r, bool with_enhanced) {
  static const std::vector<std::string> no_text{std::string{}};
  const auto& lines = r.lines.empty() ? no_text : r.lines;
  const bool enh = with_enhanced && !r.enhanced.empty();
  char code[16];
  const auto code_size =
      static_cast<std::size_t>(std::to_chars(code, std::end(code), r.code).ptr - code);
  // Every reply goes through here, most of them one short line: sized once and copied in,
  // rather than grown a piece at a time.
  std::size_t size = 0;
  for (const auto& text : lines)
    size += code_size + 1 + (enh ? r.enhanced.size() + 1 : 0) + text.size() + 2;
  std::size_t at = out.size();
  out.resize(at + size);
  char* p = out.data() + at;
  auto put = [&p](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const bool last = i + 1 == lines.size();
    const std::string& text = lines[i];
    put({code, code_size});
    // "250" alone is a valid last line; a continuation line always needs its "-", and an AUTH
    // challenge always its space (RFC 4954: "334" SP [base64]).
    if (!last || enh || !text.empty() || r.code == 334) *p++ = last ? ' ' : '-';
    if (enh) {
      put(r.enhanced);
      if (!text.empty()) *p++ = ' ';
    }
    put(text);
    put("\r\n");
  }
  out.resize(static_cast<std::size_t>(p - out.data()));  // the separators some lines go without
}

std::string to_wire(const reply& r, bool with_enhanced) {
  std::string out;
  append_wire(out, r, with_enhanced);
  return out;
}

reply_reader::status reply_reader::feed_line(std::string_view line) {
  if (!started_) {
    partial_ = reply{};
    partial_.lines.clear();
    error_.clear();
    octets_ = 0;
  }
  octets_ += line.size() + 2;
  if (partial_.lines.size() >= max_lines || octets_ > max_octets) {
    error_ = "multi-line reply longer than " + std::to_string(max_lines) + " lines or " +
             std::to_string(max_octets) + " octets";
    return status::malformed;
  }
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
      line[0] < '1' || line[0] > '5' || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
    error_ = "reply line does not start with a three-digit code and SP or '-'";
    return status::malformed;
  }
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
  if (!started_) {
    partial_.code = code;
    std::size_t n = enhanced_length(text, code);
    if (n > 0) partial_.enhanced = std::string(text.substr(0, n));
    started_ = true;
  } else if (code != partial_.code) {
    error_ = "reply code changed from " + std::to_string(partial_.code) + " to " +
             std::to_string(code) + " within a multi-line reply";
    return status::malformed;
  }
  // Strip the enhanced code only when the first line had one (RFC 2034: every line carries it).
  if (!partial_.enhanced.empty()) {
    std::size_t n = enhanced_length(text, code);
    if (n > 0) text.remove_prefix(n < text.size() ? n + 1 : n);
  }
  partial_.lines.emplace_back(text);
  bool more = line.size() > 3 && line[3] == '-';
  return more ? status::need_more : status::complete;
}

reply reply_reader::take() {
  started_ = false;
  reply r = std::move(partial_);
  partial_ = reply{};
  return r;
}

std::optional<std::string_view> ehlo_parameters(const reply& ehlo, std::string_view keyword) {
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    const std::string_view line = ehlo.lines[i];
    if (!istarts_with(line, keyword)) continue;
    if (line.size() == keyword.size()) return line.substr(line.size());
    if (line[keyword.size()] != ' ') continue;
    auto rest = line.substr(keyword.size() + 1);
    while (!rest.empty() && rest.front() == ' ')
      rest.remove_prefix(1);  // "SIZE  100"
    return rest;
  }
  return std::nullopt;
}

bool ehlo_offers(const reply& ehlo, std::string_view keyword) {
  return ehlo_parameters(ehlo, keyword).has_value();
}

}  // namespace smtpfault::proto
