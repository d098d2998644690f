#include "script/source_scan.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <set>
#include <unordered_map>

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

// A comment or a string literal that begins at code[i]: where it ends, whether it is a string
// (short or long) and, for a string, its text between the quotes or brackets.
struct lua_span {
  std::size_t end = 0;
  bool string = false;
  std::string_view text;
};

std::optional<lua_span> comment_or_string_at(std::string_view code, std::size_t i) {
  const bool long_comment = code.substr(i, 4) == "--[[";
  if (long_comment || code.substr(i, 2) == "[[") {
    const auto from = i + (long_comment ? 4 : 2);
    const auto close = code.find("]]", from);
    const auto stop = close == std::string_view::npos ? code.size() : close;
    return lua_span{std::min(stop + 2, code.size()), !long_comment, code.substr(from, stop - from)};
  }
  if (code.substr(i, 2) == "--")
    return lua_span{std::min(code.find('\n', i), code.size()), false, {}};
  const char quote = code[i];
  if (quote != '"' && quote != '\'') return std::nullopt;
  std::size_t j = i + 1;
  while (j < code.size() && code[j] != quote && code[j] != '\n')
    j += code[j] == '\\' ? 2 : 1;
  j = std::min(j, code.size());
  return lua_span{std::min(j + 1, code.size()), true, code.substr(i + 1, j - i - 1)};
}

// Newlines in code[from, to): a span skipped over may hold some.
std::size_t newlines(std::string_view code, std::size_t from, std::size_t to) {
  return static_cast<std::size_t>(std::count(code.begin() + static_cast<std::ptrdiff_t>(from),
                                             code.begin() + static_cast<std::ptrdiff_t>(to), '\n'));
}

// Where each bracket of the code closes and where each line starts, found in one pass: a
// chain of methods is then read without reading the arguments between (nested calls would
// make that quadratic).
struct code_index {
  std::unordered_map<std::size_t, std::size_t> closes;  // an open bracket -> past its close
  std::vector<std::size_t> line_starts{0};

  explicit code_index(std::string_view code) {
    std::vector<std::size_t> open;
    for (std::size_t i = 0; i < code.size();) {
      if (auto span = comment_or_string_at(code, i)) {
        for (std::size_t j = i; j < span->end; ++j)
          if (code[j] == '\n') line_starts.push_back(j + 1);
        i = span->end;
        continue;
      }
      const char c = code[i];
      if (c == '\n') line_starts.push_back(i + 1);
      if (c == '(' || c == '{' || c == '[') open.push_back(i);
      if ((c == ')' || c == '}' || c == ']') && !open.empty()) {
        closes[open.back()] = i + 1;
        open.pop_back();
      }
      ++i;
    }
  }
  std::size_t line_at(std::size_t pos) const {
    return static_cast<std::size_t>(std::upper_bound(line_starts.begin(), line_starts.end(), pos) -
                                    line_starts.begin());
  }
};

// Blanks, line breaks and comments from code[i] on.
std::size_t skip_space(std::string_view code, std::size_t i) {
  while (i < code.size()) {
    if (code[i] == ' ' || code[i] == '\t' || code[i] == '\r' || code[i] == '\n') {
      ++i;
    } else if (auto span = comment_or_string_at(code, i); span && !span->string) {
      i = span->end;
    } else {
      break;
    }
  }
  return i;
}

// Past a call's arguments at code[i]: "(...)", "{...}" or a string; npos when none begins there.
std::size_t skip_arguments(std::string_view code, std::size_t i, const code_index& index) {
  if (i >= code.size()) return std::string_view::npos;
  if (code[i] == '(' || code[i] == '{') {
    const auto close = index.closes.find(i);
    return close == index.closes.end() ? std::string_view::npos : close->second;
  }
  auto span = comment_or_string_at(code, i);
  return span && span->string ? span->end : std::string_view::npos;
}

// The methods called one after another from code[i] on, just after a call's name:
// `(550):delay(2):close()`.
std::vector<std::pair<std::string, std::size_t>> chained_methods(std::string_view code,
                                                                 std::size_t i,
                                                                 const code_index& index) {
  std::vector<std::pair<std::string, std::size_t>> found;
  for (;;) {
    i = skip_arguments(code, skip_space(code, i), index);
    if (i == std::string_view::npos) break;
    i = skip_space(code, i);
    if (i >= code.size() || code[i] != ':') break;
    i = skip_space(code, i + 1);
    const std::size_t start = i;
    while (i < code.size() && name_char(code[i]))
      ++i;
    if (i == start) break;
    found.emplace_back(std::string(code.substr(start, i - start)), index.line_at(start));
  }
  return found;
}

// Whether the blanked code may give the name `smtp` to something of its own: a local, a
// parameter, a loop variable (`local smtp = {...}`, `function fmt(smtp)`, `for _, smtp in`).
// Scopes are not followed, so any bare `smtp` after `local`, `for`, `function`, `(` or `,` counts
// (a call such as f(smtp) too): then `smtp.NAME` may not be the library's, and is not judged.
bool may_rebind_smtp(std::string_view blanked) {
  constexpr std::string_view word = "smtp";
  for (auto at = blanked.find(word); at != std::string_view::npos;
       at = blanked.find(word, at + 1)) {
    const auto end = at + word.size();
    if (at > 0 &&
        (name_char(blanked[at - 1]) || blanked[at - 1] == '.' || blanked[at - 1] == ':')) {
      continue;
    }
    if (end < blanked.size() && name_char(blanked[end])) continue;
    auto after = blanked.find_first_not_of(" \t\r\n", end);
    if (after != std::string_view::npos &&
        (blanked[after] == '.' || blanked[after] == ':' || blanked[after] == '[')) {
      continue;  // smtp.NAME, smtp:NAME, smtp[NAME]: a use, not a binding
    }
    auto before = blanked.substr(0, at);
    while (!before.empty() && std::isspace(static_cast<unsigned char>(before.back())))
      before.remove_suffix(1);
    if (before.ends_with('(') || before.ends_with(',') || ends_with_word(before, "local") ||
        ends_with_word(before, "for") || ends_with_word(before, "function")) {
      return true;
    }
  }
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
  std::optional<code_index> index;  // made when the first chain is read
  for (std::size_t i = 0; i < code.size();) {
    const char c = code[i];
    if (c == '\n') ++line;
    if (auto span = comment_or_string_at(code, i)) {
      line += newlines(code, i, span->end);
      // A string is a value: what closes one, for statement_may_follow; a comment is a blank.
      seen += span->string ? '"' : ' ';
      i = span->end;
      continue;
    }
    if (c == '(' || c == '{' || c == '[') ++depth;
    if ((c == ')' || c == '}' || c == ']') && depth > 0) --depth;
    if (c == 's') {
      if (auto r = reference_at(code, i)) {
        r->line = line;
        r->starts_statement = depth == 0 && statement_may_follow(seen);
        if (r->called && constructs_an_action(r->name)) {
          if (!index) index.emplace(code);
          r->chained =
              chained_methods(code, i + std::string_view("smtp.").size() + r->name.size(), *index);
        }
        found.push_back(std::move(*r));
      }
    }
    seen += c;
    ++i;
  }
  if (may_rebind_smtp(seen)) return {};
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
    if (auto span = comment_or_string_at(code, i)) {
      if (span->string) use.names.emplace(span->text);
      i = span->end;
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

std::vector<std::string> params_maybe_named(std::string_view code) {
  std::vector<std::string> names;
  constexpr std::size_t longest = 64;
  for (const auto& n : scan_params_use(code).names) {
    if (!n.empty() && n.size() <= longest && std::all_of(n.begin(), n.end(), name_char)) {
      names.push_back(n);
    }
  }
  return names;
}

std::vector<std::string> params_never_named(std::string_view code,
                                            const std::vector<std::string>& keys) {
  std::vector<std::string> unread;
  if (keys.empty()) return unread;  // nothing to look for: no scan at load
  const auto use = scan_params_use(code);
  if (use.whole_table) return unread;
  for (const auto& key : keys)
    if (!use.names.contains(key)) unread.push_back(key);
  return unread;
}

namespace {

bool lua_keyword(std::string_view w) {
  static constexpr std::array<std::string_view, 22> keywords = {
      "and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
      "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
      "repeat",   "return", "then", "true", "until",  "while"};
  for (auto k : keywords)
    if (k == w) return true;
  return false;
}

// The code's tokens that matter here: names, with the line they are on and the character
// that follows them; comments and strings left out, a string standing as one '"'.
struct token {
  std::string text;  // a name, or one character of punctuation
  std::size_t line = 0;
  char next = '\0';         // the first character after a name, blanks skipped
  std::string_view string;  // for a string's '"': its text as written, escapes and all
};

std::vector<token> tokens_of(std::string_view code) {
  std::vector<token> out;
  std::size_t line = 1;
  for (std::size_t i = 0; i < code.size();) {
    const char c = code[i];
    if (c == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (auto span = comment_or_string_at(code, i)) {
      if (span->string) out.push_back({"\"", line, '\0', span->text});
      line += newlines(code, i, span->end);
      i = span->end;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      auto end = i;
      while (end < code.size() && name_char(code[end]))
        ++end;
      auto k = end;
      while (k < code.size() && (code[k] == ' ' || code[k] == '\t'))
        ++k;
      out.push_back(
          {std::string(code.substr(i, end - i)), line, k < code.size() ? code[k] : '\0', {}});
      i = end;
      continue;
    }
    out.push_back({std::string(1, c), line, '\0', {}});
    ++i;
  }
  return out;
}

bool is_name(const token& t) {
  return !t.text.empty() &&
         (std::isalpha(static_cast<unsigned char>(t.text[0])) || t.text[0] == '_');
}

// Whether the "(" at tokens[i] opens a function's parameters: `function (`, `function f(`,
// `function t.a.f(`, `function t:m(`.
bool opens_parameters(const std::vector<token>& tokens, std::size_t i) {
  if (i == 0) return false;
  std::size_t j = i - 1;
  if (tokens[j].text == "function") return true;
  while (j >= 2 && is_name(tokens[j]) && (tokens[j - 1].text == "." || tokens[j - 1].text == ":"))
    j -= 2;
  return j >= 1 && is_name(tokens[j]) && tokens[j - 1].text == "function";
}

}  // namespace

std::vector<global_call> undefined_calls(std::string_view code) {
  const auto tokens = tokens_of(code);
  std::set<std::string, std::less<>> defined;
  std::vector<global_call> calls;
  // Names listed after `local` or `for`, or between a function's parentheses, are defined.
  enum class listing { none, names, parameters } list = listing::none;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    const std::string_view before = i > 0 ? std::string_view(tokens[i - 1].text) : "";
    if (!is_name(t)) {
      if (list == listing::parameters && t.text == ")") list = listing::none;
      if (list == listing::names && t.text != ",") list = listing::none;
      if (t.text == "(" && opens_parameters(tokens, i)) list = listing::parameters;
      continue;
    }
    if (t.text == "local" || t.text == "for") {
      list = listing::names;
      continue;
    }
    if (lua_keyword(t.text)) {
      if (list == listing::names) list = listing::none;
      continue;
    }
    const bool member = before == "." || before == ":";
    if (list != listing::none || before == "function" ||
        (!member && t.next == '=' && i + 1 < tokens.size())) {
      defined.insert(t.text);
      continue;
    }
    const auto called = [&](std::size_t j) {
      const char n = tokens[j].next;
      return n == '(' || n == '{' || n == '"' || n == '\'' ||
             (n == '[' && j + 1 < tokens.size() && tokens[j + 1].text == "\"");
    };
    if (member) continue;
    if (called(i)) calls.push_back({t.line, t.text});
    // io.write(...), os.time(): a call through the table the name holds needs the name too.
    const bool through = (t.next == '.' || t.next == ':') && i + 2 < tokens.size() &&
                         is_name(tokens[i + 2]) && called(i + 2);
    if (through) calls.push_back({t.line, t.text});
  }
  std::erase_if(calls, [&](const global_call& c) { return defined.contains(c.name); });
  return calls;
}

std::vector<module_request> literal_requires(std::string_view code) {
  const auto tokens = tokens_of(code);
  std::vector<module_request> found;
  for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (tokens[i].text != "require" ||
        (i > 0 && (tokens[i - 1].text == "." || tokens[i - 1].text == ":"))) {
      continue;
    }
    std::size_t arg = i + 1;
    if (tokens[arg].text == "(" && arg + 2 < tokens.size() && tokens[arg + 2].text == ")") ++arg;
    if (tokens[arg].text == "\"")
      found.push_back({tokens[i].line, std::string(tokens[arg].string)});
  }
  return found;
}

std::vector<std::size_t> return_lines(std::string_view code, std::size_t first, std::size_t last) {
  std::vector<std::size_t> lines;
  std::size_t functions = 0;
  for (const auto& t : tokens_of(code)) {
    if (t.line < first || t.line > last) continue;
    if (t.text == "function" && ++functions > 1) return {};
    if (t.text == "return") lines.push_back(t.line);
  }
  return lines;
}

}  // namespace smtpfault::script
