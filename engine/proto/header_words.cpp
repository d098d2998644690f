#include "proto/header_words.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "proto/hex.hpp"
#include "proto/sasl.hpp"
#include "proto/utf8.hpp"

namespace smtpfault::proto {

namespace {

// The "Q" encoding (RFC 2047 4.2): "_" is a space, "=XX" an octet.
std::optional<std::string> decode_q(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      out += ' ';
    } else if (s[i] == '=') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// windows-1252 differs from ISO-8859-1 only in 0x80-0x9F (the euro sign, curly quotes, dashes);
// the five octets it leaves undefined stay the C1 controls they are in ISO-8859-1, as WHATWG's
// encoding standard decodes them.
constexpr char32_t windows_1252_high[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

// ISO-8859-15 (Latin-9) replaces eight ISO-8859-1 symbols with the euro sign and the letters
// French and Finnish lacked.
char32_t latin9(unsigned char c) {
  switch (c) {
    case 0xA4:
      return 0x20AC;
    case 0xA6:
      return 0x0160;
    case 0xA8:
      return 0x0161;
    case 0xB4:
      return 0x017D;
    case 0xB8:
      return 0x017E;
    case 0xBC:
      return 0x0152;
    case 0xBD:
      return 0x0153;
    case 0xBE:
      return 0x0178;
    default:
      return c;
  }
}

// The charsets converted to UTF-8, by the names and aliases mailers write (IANA's registry:
// "latin1", "l1", "cp819" and the ISO names with and without the hyphen).
enum class known_charset { unknown, utf8, latin1, windows_1252, latin9 };

known_charset charset_named(std::string_view name) {
  std::string cs(name);
  for (auto& c : cs)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii")
    return known_charset::utf8;
  // ISO-8859-1 is read as itself, not as WHATWG's windows-1252: a mailer that labels
  // windows-1252 text as ISO-8859-1 is a bug a test should see (its curly quotes come out as
  // C1 controls).
  if (cs == "iso-8859-1" || cs == "iso8859-1" || cs == "iso_8859-1" || cs == "latin1" ||
      cs == "latin-1" || cs == "l1" || cs == "cp819" || cs == "ibm819") {
    return known_charset::latin1;
  }
  if (cs == "windows-1252" || cs == "cp1252" || cs == "x-cp1252")
    return known_charset::windows_1252;
  if (cs == "iso-8859-15" || cs == "iso8859-15" || cs == "iso_8859-15" || cs == "latin9" ||
      cs == "latin-9" || cs == "l9") {
    return known_charset::latin9;
  }
  return known_charset::unknown;
}

std::string single_byte_to_utf8(std::string_view s, known_charset charset) {
  std::string out;
  for (unsigned char c : s) {
    char32_t cp = c;
    if (charset == known_charset::windows_1252 && c >= 0x80 && c < 0xA0)
      cp = windows_1252_high[c - 0x80];
    else if (charset == known_charset::latin9)
      cp = latin9(c);
    append_utf8(out, cp);
  }
  return out;
}

// A decoded word: UTF-8 text, or, for a UTF-8 word, octets that may end or begin in the middle
// of a character. Mailers split a character across two adjacent words (RFC 2047 5 forbids it,
// yet it happens), so adjacent UTF-8 words are checked together.
struct decoded_word {
  std::string text;
  bool utf8_octets = false;
};

// charset, encoding and text of "=?charset?encoding?text?=" (without the delimiters).
std::optional<decoded_word> decode_word(std::string_view charset, char encoding,
                                        std::string_view text) {
  // RFC 2231 adds "*language" to a word's charset; a word without a charset is malformed.
  charset = charset.substr(0, charset.find('*'));
  const auto cs = charset.empty() ? known_charset::unknown : charset_named(charset);
  std::optional<std::string> octets;
  if (encoding == 'B' || encoding == 'b') {
    octets = base64_decode(text);
  } else if (encoding == 'Q' || encoding == 'q') {
    octets = decode_q(text);
  }
  if (!octets || cs == known_charset::unknown) return std::nullopt;
  if (cs == known_charset::utf8) return decoded_word{std::move(*octets), true};
  return decoded_word{single_byte_to_utf8(*octets, cs)};
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// The encoded word "=?charset?encoding?text?=" that starts at i, decoded, and the index just
// past it; nothing when no word starts there or it does not decode.
struct word_found {
  decoded_word word;
  std::size_t end;
};
std::optional<word_found> encoded_word_at(std::string_view text, std::size_t i) {
  if (text.compare(i, 2, "=?") != 0) return std::nullopt;
  const auto q1 = text.find('?', i + 2);
  const auto q2 = q1 == std::string_view::npos ? q1 : text.find('?', q1 + 1);
  const auto q3 = q2 == std::string_view::npos ? q2 : text.find('?', q2 + 1);
  if (q3 == std::string_view::npos || q2 != q1 + 2 || q3 + 1 >= text.size() ||
      text[q3 + 1] != '=') {
    return std::nullopt;
  }
  const auto word = text.substr(i, q3 + 2 - i);
  if (std::find_if(word.begin(), word.end(), is_space) != word.end()) return std::nullopt;
  auto decoded =
      decode_word(text.substr(i + 2, q1 - i - 2), text[q1 + 1], text.substr(q2 + 1, q3 - q2 - 1));
  if (!decoded) return std::nullopt;
  return word_found{std::move(*decoded), q3 + 2};
}

// One pass over a text: what is decoded so far, the space that may yet go, and the run of
// adjacent UTF-8 words whose octets are checked together.
// join: check the octets of adjacent UTF-8 words together; without it, each word on its own
// (what a run that is not valid UTF-8 even when joined falls back to). after_word: whether text
// follows a decoded word (its leading space then goes if its first word decodes too); on return,
// whether text ended with a decoded word.
class word_decoder {
 public:
  word_decoder(std::string_view text, bool join) : text_(text), join_(join) {}

  std::string run(bool& after_word) {
    std::size_t i = 0;
    while (i < text_.size()) {
      auto found = encoded_word_at(text_, i);
      if (found && found->word.utf8_octets && !join_ && !valid_utf8(found->word.text)) {
        found.reset();
      }
      if (found) {
        add_word(found->word.text, found->word.utf8_octets, i, found->end, after_word);
        i = found->end;
        continue;
      }
      if (is_space(text_[i])) {
        pending_space_ += text_[i++];
        continue;
      }
      end_run();
      out_ += pending_space_;
      pending_space_.clear();
      after_word = false;
      out_ += text_[i++];
    }
    if (run_from_ != none) after_word = end_run();
    return out_ + pending_space_;
  }

 private:
  static constexpr std::size_t none = std::string_view::npos;

  // The word text[from, to) decoded to `decoded`.
  void add_word(const std::string& decoded, bool utf8_octets, std::size_t from, std::size_t to,
                bool& after_word) {
    const bool in_run = join_ && utf8_octets;
    const bool after_decoded = after_word && (in_run || end_run());
    if (!after_decoded) out_ += pending_space_;
    if (in_run && run_from_ == none) {
      // After a decoded word the space before the run goes only if the run decodes.
      run_from_ = from - (after_decoded ? pending_space_.size() : 0);
      run_after_word_ = after_decoded;
    }
    pending_space_.clear();
    if (in_run) {
      run_ += decoded;
      run_to_ = to;
    } else {
      out_ += decoded;
    }
    after_word = true;
  }

  // Whether the run (if any) ended with a decoded word: if not, its last word stays and keeps
  // the space after it.
  bool end_run() {
    if (run_from_ == none) return true;
    bool last_decoded = true;
    if (valid_utf8(run_)) {
      out_ += run_;
    } else {
      last_decoded = run_after_word_;
      const auto words = text_.substr(run_from_, run_to_ - run_from_);
      out_ += word_decoder(words, false).run(last_decoded);
    }
    run_.clear();
    run_from_ = none;
    return last_decoded;
  }

  std::string_view text_;
  bool join_;
  std::string out_;
  std::string pending_space_;  // dropped when it only separates two encoded words
  std::string run_;            // octets of adjacent UTF-8 words, not yet checked
  std::size_t run_from_ = none, run_to_ = 0;
  bool run_after_word_ = false;  // the run follows a decoded word (its space is in the run)
};

}  // namespace

std::optional<std::string> text_as_utf8(std::string_view octets, std::string_view charset) {
  const auto cs = charset_named(charset);
  if (cs == known_charset::unknown) return std::nullopt;
  if (cs == known_charset::utf8) return utf8_repaired(octets);
  return single_byte_to_utf8(octets, cs);
}

std::string decode_encoded_words(std::string_view text) {
  bool after_word = false;
  return word_decoder(text, true).run(after_word);
}

}  // namespace smtpfault::proto
