#include "script/source_scan.hpp"

#include <array>
#include <cctype>

namespace smtpfault::script {

namespace {

// lua/smtp.lua's constructors of actions, the values a hook returns.
constexpr std::array<std::string_view, 18> action_constructors = {
    "reply",       "reply_then_close", "each_recipient", "delay", "trickle",    "split",
    "raw",         "malformed",        "close",          "lose",  "reset",      "hang",
    "unsolicited", "starttls",         "certificate",    "hide",  "extensions", "challenge"};

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

bool ends_with_word(std::string_view text, std::string_view word) {
  return text.size() >= word.size() && text.substr(text.size() - word.size()) == word &&
         (text.size() == word.size() || !name_char(text[text.size() - word.size() - 1]));
}

// Whether code that ends so (blanks trimmed) leaves a new statement to begin after it, rather
// than an expression to go on: `then`, `do`, `end`, a closed call; not `return`, `=`, `,`, `and`.
bool statement_may_follow(std::string_view code) {
  while (!code.empty() && std::isspace(static_cast<unsigned char>(code.back()))) {
    code.remove_suffix(1);
  }
  if (code.empty()) return true;
  for (std::string_view k :
       {"return", "and", "or", "not", "local", "in", "until", "while", "if", "elseif"}) {
    if (ends_with_word(code, k)) return false;
  }
  const char last = code.back();
  return name_char(last) || last == ')' || last == ']' || last == '}' || last == '"' ||
         last == '\'' || last == ';';
}

// The `smtp.NAME` at code[at...], if one begins there.
std::optional<smtp_reference> reference_at(std::string_view code, std::size_t at) {
  constexpr std::string_view prefix = "smtp.";
  if (code.substr(at, prefix.size()) != prefix) return std::nullopt;
  if (at > 0 && (name_char(code[at - 1]) || code[at - 1] == '.' || code[at - 1] == ':')) {
    return std::nullopt;
  }
  std::size_t end = at + prefix.size();
  while (end < code.size() && name_char(code[end]))
    ++end;
  if (end == at + prefix.size()) return std::nullopt;
  smtp_reference r;
  r.name = std::string(code.substr(at + prefix.size(), end - at - prefix.size()));
  while (end < code.size() && (code[end] == ' ' || code[end] == '\t'))
    ++end;
  const char next = end < code.size() ? code[end] : '\0';
  r.called = next == '(' || next == '{' || next == '"' || next == '\'';
  r.assigned = next == '=' && (end + 1 >= code.size() || code[end + 1] != '=');
  return r;
}

bool constructs_an_action(const std::string& name) {
  for (auto c : action_constructors)
    if (c == name) return true;
  return false;
}

}  // namespace

std::vector<smtp_reference> smtp_references(std::string_view code) {
  std::vector<smtp_reference> found;
  // The code seen so far with strings and comments blanked out, to judge what comes before a
  // call; and the depth of open brackets, inside which no statement begins.
  std::string seen;
  seen.reserve(code.size());
  int depth = 0;
  std::size_t line = 1;
  for (std::size_t i = 0; i < code.size();) {
    const char c = code[i];
    if (c == '\n') ++line;
    if (code.substr(i, 4) == "--[[" || code.substr(i, 2) == "[[") {
      const bool comment = c == '-';
      const auto close = code.find("]]", i + 2);
      const auto stop = close == std::string_view::npos ? code.size() : close + 2;
      for (; i < stop; ++i)
        if (code[i] == '\n') ++line;
      seen += comment ? ' ' : '"';  // a long string is a value, as a short one is
      continue;
    }
    if (code.substr(i, 2) == "--") {
      i = std::min(code.find('\n', i), code.size());
      continue;
    }
    if (c == '"' || c == '\'') {
      std::size_t j = i + 1;
      while (j < code.size() && code[j] != c && code[j] != '\n')
        j += code[j] == '\\' ? 2 : 1;
      i = std::min(j + 1, code.size());
      seen += c;  // what closes a value, for statement_may_follow
      continue;
    }
    if (c == '(' || c == '{' || c == '[') ++depth;
    if ((c == ')' || c == '}' || c == ']') && depth > 0) --depth;
    if (c == 's') {
      if (auto r = reference_at(code, i)) {
        r->line = line;
        r->starts_statement = depth == 0 && statement_may_follow(seen);
        found.push_back(std::move(*r));
      }
    }
    seen += c;
    ++i;
  }
  return found;
}

std::optional<discarded_action> find_discarded_action(std::string_view code) {
  for (const auto& r : smtp_references(code)) {
    if (r.starts_statement && r.called && constructs_an_action(r.name)) {
      return discarded_action{r.line, "smtp." + r.name};
    }
  }
  return std::nullopt;
}

namespace {

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Whether `word` occurs in `code` with no word character on either side.
bool names_word(std::string_view code, std::string_view word) {
  for (auto at = code.find(word); at != std::string_view::npos; at = code.find(word, at + 1)) {
    const bool starts = at == 0 || !word_char(code[at - 1]);
    const auto end = at + word.size();
    if (starts && (end == code.size() || !word_char(code[end]))) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> params_never_named(std::string_view code,
                                            const std::vector<std::string>& keys) {
  std::vector<std::string> unread;
  for (std::string_view whole : {"pairs(params", "next(params", "pairs (params"}) {
    if (code.find(whole) != std::string_view::npos) return unread;
  }
  for (const auto& key : keys)
    if (!names_word(code, key)) unread.push_back(key);
  return unread;
}

}  // namespace smtpfault::script
