#include "proto/mime.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "proto/header_words.hpp"
#include "proto/hex.hpp"
#include "proto/utf8.hpp"

namespace smtpfault::proto {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// "text/plain; charset=utf-8; name*0=a; name*1=b.txt": the value before the first ';' (lower
// case) and the parameters, names lower case, quoted strings unquoted, RFC 2231 continuations
// joined and extended values ("utf-8''%E2%82%AC.txt") decoded to UTF-8.
struct field_value {
  std::string value;
  std::map<std::string, std::string> params;
};

// Splits at ';' outside quoted strings.
std::vector<std::string_view> split_params(std::string_view v) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t from = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && quoted) {
      ++i;
    } else if (v[i] == '"') {
      quoted = !quoted;
    } else if (v[i] == ';' && !quoted) {
      out.push_back(v.substr(from, i - from));
      from = i + 1;
    }
  }
  out.push_back(v.substr(from));
  return out;
}

std::string unquoted(std::string_view v) {
  v = trim(v);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  std::string out;
  for (std::size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

// "utf-8'en'%E2%82%AC%20rates.txt" (RFC 2231 4): the charset, then percent-encoded octets.
std::string extended_value(std::string_view v, std::string& charset) {
  const auto first = v.find('\'');
  const auto second = first == std::string_view::npos ? first : v.find('\'', first + 1);
  if (second != std::string_view::npos) {
    charset = std::string(v.substr(0, first));
    v.remove_prefix(second + 1);
  }
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const int hi = v[i] == '%' && i + 2 < v.size() ? hex_value(v[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(v[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += v[i];
    }
  }
  return out;
}

field_value parse_field_value(std::string_view raw) {
  field_value out;
  auto items = split_params(raw);
  out.value = lower(trim(items.front()));
  // name -> pieces by index (a name without "*N" is piece 0), each with whether it is encoded.
  struct piece {
    std::string text;
    bool encoded = false;
  };
  // The RFC 2231 form of a name (any '*') and the plain one apart: given both, as mailers do
  // for old readers (filename*=utf-8''%E2%82%AC.pdf; filename="EUR.pdf"), the RFC 2231 one wins.
  std::map<std::string, std::map<int, piece>> pieces, plain;
  for (std::size_t i = 1; i < items.size(); ++i) {
    const auto eq = items[i].find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = lower(trim(items[i].substr(0, eq)));
    const auto value = items[i].substr(eq + 1);
    if (name.find('*') == std::string::npos) {
      plain[name][0] = {unquoted(value), false};
      continue;
    }
    bool encoded = name.back() == '*';
    if (encoded) name.pop_back();
    int index = 0;
    if (const auto star = name.find('*'); star != std::string::npos) {
      const auto digits = name.substr(star + 1);
      if (digits.empty() || digits.size() > 3 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        continue;
      }
      index = std::stoi(digits);
      name.resize(star);
    }
    pieces[name][index] = {encoded ? std::string(trim(value)) : unquoted(value), encoded};
  }
  for (auto& [name, parts] : pieces) {
    std::string charset, octets;
    bool any_encoded = false;
    for (auto& [index, p] : parts) {
      // Only the first encoded piece carries the charset'language' prefix.
      if (p.encoded) {
        std::string cs;
        octets += index == parts.begin()->first ? extended_value(p.text, cs)
                                                : extended_value("''" + p.text, cs);
        if (!cs.empty()) charset = cs;
        any_encoded = true;
      } else {
        octets += p.text;
      }
    }
    // In a charset not converted, the octets made valid UTF-8 (U+FFFD for what is not).
    out.params[name] =
        any_encoded ? text_as_utf8(octets, charset).value_or(utf8_repaired(octets)) : octets;
  }
  for (auto& [name, parts] : plain)
    out.params.try_emplace(name, std::move(parts[0].text));
  return out;
}

// A header field's first line: a name of printable characters other than space and ':' (RFC
// 5322 2.2), then ':'.
bool field_line(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  return std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon),
                     [](char c) { return c > ' ' && c < 127; });
}

// Where the header section of text ends and its body begins: after the first empty line (CRLF
// or LF). Without one, at the first line that is neither a field nor a field's continuation (a
// part that begins with its text, the blank line forgotten), and `separated` is false; the
// whole text is headers when every line is one.
std::size_t body_start(std::string_view text, bool& separated) {
  separated = true;
  if (text.starts_with("\r\n")) return 2;
  if (text.starts_with("\n")) return 1;
  for (std::size_t at = text.find('\n'); at != std::string_view::npos;
       at = text.find('\n', at + 1)) {
    if (at + 1 < text.size() && text[at + 1] == '\n') return at + 2;
    if (at + 2 < text.size() && text[at + 1] == '\r' && text[at + 2] == '\n') return at + 3;
  }
  separated = false;
  for (std::size_t line = 0; line < text.size();) {
    const auto eol = std::min(text.find('\n', line), text.size());
    const auto content = text.substr(line, eol - line);
    const bool continuation = line > 0 && (content.front() == ' ' || content.front() == '\t');
    if (!continuation && !field_line(content)) return line;
    line = eol + 1;
  }
  return text.size();
}

class reader {
 public:
  explicit reader(std::string_view message) : message_(message) {}

  mime_structure run() {
    read(0, message_.size(), "", 0, "text/plain");
    return std::move(out_);
  }

 private:
  // The entity message_[from, to): its headers, then a leaf body or the parts of a multipart.
  // default_type: its type when it has no Content-Type (message/rfc822 in a multipart/digest,
  // RFC 2046 5.1.5).
  void read(std::size_t from, std::size_t to, const std::string& path, std::size_t depth,
            std::string_view default_type) {
    // Multiparts count too: empty ones nested in each other would otherwise be read without end.
    // The message itself does not, so that a multipart of 1,000 parts lists them all.
    if (depth > 0 && ++entities_ > max_mime_parts) {
      if (!told_parts_) {
        problem("over " + std::to_string(max_mime_parts) + " parts: the rest are not listed");
      }
      told_parts_ = true;
      return;
    }
    const auto text = message_.substr(from, to - from);
    bool separated = true;
    const auto body = body_start(text, separated);
    const auto headers = header_fields(text.substr(0, body));
    auto type = parse_field_value(header_value(headers, "Content-Type").value_or(""));
    if (type.value.empty()) type.value = default_type;
    const std::string where = path.empty() ? "the message" : "part " + path;
    if (!separated && body < text.size())
      problem(where +
              ": no empty line after its header fields: its text begins at the first line that is "
              "no field");
    if (type.value.starts_with("multipart/")) {
      const auto boundary = type.params.find("boundary");
      if (boundary == type.params.end() || boundary->second.empty()) {
        problem(where + " is " + type.value + " without a boundary: read as one part");
      } else if (depth >= max_mime_depth) {
        problem(where + " is nested over " + std::to_string(max_mime_depth) +
                " multiparts deep: read as one part");
      } else if (read_multipart(
                     from + body, to, boundary->second, path, depth, where,
                     type.value == "multipart/digest" ? "message/rfc822" : "text/plain")) {
        return;
      }
    }
    add_leaf(headers, type, from + body, to, path.empty() ? "1" : path);
  }

  // The parts between the delimiter lines "--boundary" and up to "--boundary--" (RFC 2046
  // 5.1.1); false when there is no delimiter at all.
  bool read_multipart(std::size_t from, std::size_t to, const std::string& boundary,
                      const std::string& path, std::size_t depth, const std::string& where,
                      std::string_view part_type) {
    const std::string dash = "--" + boundary;
    std::size_t part_from = std::string_view::npos;  // the body of the part being read
    int n = 0;
    bool closed = false;
    for (std::size_t line = from; line < to;) {
      auto eol = message_.find('\n', line);
      if (eol == std::string_view::npos || eol >= to) eol = to;
      auto text = message_.substr(line, eol - line);
      if (text.starts_with(dash)) {
        auto rest = trim(text.substr(dash.size()));
        const bool close = rest == "--";
        if (rest.empty() || close) {
          // The line break before the delimiter belongs to it, not to the part.
          std::size_t end = line;
          if (end > from && message_[end - 1] == '\n') --end;
          if (end > from && message_[end - 1] == '\r') --end;
          if (part_from != std::string_view::npos) {
            read(part_from, std::max(end, part_from), child(path, ++n), depth + 1, part_type);
          }
          part_from = eol < to ? eol + 1 : to;
          if (close) {
            closed = true;
            break;
          }
        }
      }
      line = eol + 1;
    }
    if (part_from == std::string_view::npos) {
      problem(where + ": no line with its boundary \"" + dash + "\": read as one part");
      return false;
    }
    if (!closed) {
      problem(where + ": no closing boundary \"" + dash + "--\": its last part runs to the end");
      read(part_from, to, child(path, ++n), depth + 1, part_type);
    } else if (n == 0) {
      problem(where + ": closed by \"" + dash + "--\" before its first part: it has no parts");
    }
    return true;
  }

  static std::string child(const std::string& path, int n) {
    return path.empty() ? std::to_string(n) : path + "." + std::to_string(n);
  }

  void add_leaf(const std::vector<header_field>& headers, const field_value& type, std::size_t from,
                std::size_t to, std::string path) {
    mime_part p;
    p.path = std::move(path);
    p.content_type = type.value;
    if (auto cs = type.params.find("charset"); cs != type.params.end())
      p.charset = lower(cs->second);
    p.transfer_encoding =
        lower(trim(header_value(headers, "Content-Transfer-Encoding").value_or("7bit")));
    const auto disposition =
        parse_field_value(header_value(headers, "Content-Disposition").value_or(""));
    p.disposition = disposition.value;
    // Mailers write RFC 2047 words in file names too, though RFC 2231's form is the rule.
    if (auto f = disposition.params.find("filename"); f != disposition.params.end()) {
      p.filename = utf8_repaired(decode_encoded_words(f->second));
    } else if (auto n = type.params.find("name"); n != type.params.end()) {
      p.filename = utf8_repaired(decode_encoded_words(n->second));
    }
    if (auto id = header_value(headers, "Content-ID")) p.content_id = utf8_repaired(*id);
    p.body_offset = from;
    p.body_length = to - from;
    out_.parts.push_back(std::move(p));
  }

  // At most max_problems of them, then a count of the rest.
  void problem(std::string text) {
    static constexpr std::size_t max_problems = 20;
    if (out_.problems.size() < max_problems) {
      out_.problems.push_back(std::move(text));
    } else if (out_.problems.size() == max_problems) {
      out_.problems.push_back("and more problems, not listed");
    }
  }

  std::string_view message_;
  mime_structure out_;
  std::size_t entities_ = 0;
  bool told_parts_ = false;
};

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::optional<std::string> decode_base64_body(std::string_view body) {
  std::string out;
  out.reserve(body.size() / 4 * 3);
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : body) {
    if (c == '=') break;  // padding: the end
    // RFC 2045 6.8: characters outside the alphabet are ignored (line breaks, stray ones).
    const int v = base64_value(c);
    if (v < 0) continue;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    if (++count == 4) {
      out += static_cast<char>((bits >> 16) & 0xFF);
      out += static_cast<char>((bits >> 8) & 0xFF);
      out += static_cast<char>(bits & 0xFF);
      bits = 0;
      count = 0;
    }
  }
  if (count == 1) return std::nullopt;
  if (count >= 2) out += static_cast<char>((bits >> (6 * count - 8)) & 0xFF);
  if (count == 3) out += static_cast<char>((bits >> 2) & 0xFF);
  return out;
}

// Quoted-printable (RFC 2045 6.7): "=XX" an octet; "=" at a line's end a soft break, also with
// white space after it; white space at a line's end is the transport's and goes (rule 3). A "="
// that is neither stays as it is, as readers are told to do (note 1).
std::string decode_quoted_printable(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  while (!body.empty()) {
    const auto eol = body.find('\n');
    std::string_view line = body.substr(0, eol);
    const bool has_break = eol != std::string_view::npos;
    body = has_break ? body.substr(eol + 1) : std::string_view();
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    const bool soft = !line.empty() && line.back() == '=';
    if (soft) line.remove_suffix(1);
    for (std::size_t i = 0; i < line.size(); ++i) {
      const int hi = line[i] == '=' && i + 2 < line.size() ? hex_value(line[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_value(line[i + 2]) : -1;
      if (lo < 0) {
        out += line[i];
        continue;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (has_break && !soft) out += "\r\n";
  }
  return out;
}

}  // namespace

std::vector<header_field> header_fields(std::string_view text, std::size_t max_fields) {
  std::vector<header_field> out;
  // The header section as the MIME reader sees it: a line that begins the text of a message
  // without its empty line ("Subject: x" after it) is text, not a field.
  bool separated = true;
  text = text.substr(0, body_start(text, separated));
  while (!text.empty() && out.size() <= max_fields) {
    auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section
    if ((line.front() == ' ' || line.front() == '\t') && !out.empty()) {
      // RFC 5322 2.2.3: unfolding removes the line break only; the whitespace stays.
      out.back().value += line;
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;  // not a field: skip it
    out.push_back(
        {std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
  }
  if (out.size() > max_fields) out.resize(max_fields);
  for (auto& f : out)
    f.value = std::string(trim(f.value));  // "Subject:" then a folded line: no leading space
  return out;
}

std::size_t body_offset(std::string_view text) {
  bool separated = true;
  return body_start(text, separated);
}

std::optional<std::string> header_value(const std::vector<header_field>& h, std::string_view name) {
  for (const auto& f : h)
    if (lower(f.name) == lower(name)) return f.value;
  return std::nullopt;
}

mime_structure mime_parts(std::string_view message) {
  return reader(message).run();
}

std::optional<std::string> decode_transfer(std::string_view body, std::string_view encoding) {
  const auto e = lower(encoding);
  if (e == "base64") return decode_base64_body(body);
  if (e == "quoted-printable") return decode_quoted_printable(body);
  return std::string(body);
}

}  // namespace smtpfault::proto
