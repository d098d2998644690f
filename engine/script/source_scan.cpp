#include "script/source_scan.hpp"

#include <array>
#include <cctype>
#include <set>

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

// What the code says of `params`: the keys it reads by name (params.window), the string
// literals it holds (params["window"], smtp.param_number("window", 60)), and whether it uses
// the table as a whole (pairs(params), local p = params, params[k]), after which any key may
// be read. Comments say nothing.
struct params_use {
  std::set<std::string, std::less<>> names;
  bool whole_table = false;
};

params_use scan_params_use(std::string_view code) {
  params_use use;
  constexpr std::string_view table = "params";
  for (std::size_t i = 0; i < code.size();) {
    if (code.substr(i, 4) == "--[[" || code.substr(i, 2) == "[[") {
      const bool comment = code[i] == '-';
      const auto from = i + (comment ? 4 : 2);
      const auto close = code.find("]]", from);
      const auto stop = close == std::string_view::npos ? code.size() : close;
      if (!comment) use.names.emplace(code.substr(from, stop - from));
      i = std::min(stop + 2, code.size());
      continue;
    }
    if (code.substr(i, 2) == "--") {
      i = std::min(code.find('\n', i), code.size());
      continue;
    }
    const char c = code[i];
    if (c == '"' || c == '\'') {
      std::size_t j = i + 1;
      while (j < code.size() && code[j] != c && code[j] != '\n')
        j += code[j] == '\\' ? 2 : 1;
      j = std::min(j, code.size());
      use.names.emplace(code.substr(i + 1, j - i - 1));
      i = std::min(j + 1, code.size());
      continue;
    }
    const bool starts_word =
        i == 0 || (!name_char(code[i - 1]) && code[i - 1] != '.' && code[i - 1] != ':');
    const auto after = i + table.size();
    if (!starts_word || code.substr(i, table.size()) != table ||
        (after < code.size() && name_char(code[after]))) {
      ++i;
      continue;
    }
    auto k = after;
    while (k < code.size() && (code[k] == ' ' || code[k] == '\t'))
      ++k;
    if (k < code.size() && code[k] == '.') {
      auto end = ++k;
      while (end < code.size() && name_char(code[end]))
        ++end;
      use.names.emplace(code.substr(k, end - k));
      i = end;
      continue;
    }
    // params["window"] names its key with the string that follows; anything else is the table
    // itself going somewhere (a loop over it, another name for it, a computed key).
    auto q = k + 1;
    while (q < code.size() && (code[q] == ' ' || code[q] == '\t'))
      ++q;
    const bool literal_key =
        k < code.size() && code[k] == '[' && q < code.size() && (code[q] == '"' || code[q] == '\'');
    if (!literal_key) use.whole_table = true;
    i = after;
  }
  return use;
}

}  // namespace

std::vector<std::string> params_never_named(std::string_view code,
                                            const std::vector<std::string>& keys) {
  std::vector<std::string> unread;
  const auto use = scan_params_use(code);
  if (use.whole_table) return unread;
  for (const auto& key : keys)
    if (!use.names.contains(key)) unread.push_back(key);
  return unread;
}

}  // namespace smtpfault::script
