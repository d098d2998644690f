#include "config/toml_document.hpp"

#include <cstdint>
#include <optional>
#include <string>

#include "config/sources.hpp"

namespace smtpfault::config::detail {

namespace {

struct text_position {
  std::uint32_t line = 1, column = 1;
};

// Where the first key of too many dotted parts is, if any. A lexical look, not a parser: it
// skips strings and comments and counts the dots of each run of key parts (bare words, quoted
// parts, blanks between them); anything else ends a run. Values hold no such runs: a float or
// a date has one dot, and an array's items are apart by commas.
std::optional<text_position> first_deep_key(std::string_view text) {
  text_position at, run_start;
  int dots = 0;
  bool in_run = false;
  auto start_run = [&] {
    if (!in_run) run_start = at;
    in_run = true;
  };
  auto advance = [&](std::size_t& i) {
    if (text[i] == '\n') {
      ++at.line;
      at.column = 1;
    } else {
      ++at.column;
    }
    ++i;
  };
  // Skips a string starting at i (its opening quote), multi-line or not.
  auto skip_string = [&](std::size_t& i) {
    const char quote = text[i];
    const bool multi = text.substr(i, 3) == std::string(3, quote);
    const std::string_view end =
        multi ? std::string_view(quote == '"' ? "\"\"\"" : "'''") : std::string_view(&text[i], 1);
    for (std::size_t n = 0; n < end.size(); ++n)
      advance(i);
    while (i < text.size()) {
      if (quote == '"' && text[i] == '\\' && i + 1 < text.size()) {
        advance(i);
        advance(i);
      } else if (text.substr(i, end.size()) == end) {
        for (std::size_t n = 0; n < end.size(); ++n)
          advance(i);
        return;
      } else if (!multi && text[i] == '\n') {
        return;  // unterminated: the parser says so
      } else {
        advance(i);
      }
    }
  };
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      start_run();
      skip_string(i);
      continue;
    }
    if (c == '#') {
      while (i < text.size() && text[i] != '\n')
        advance(i);
      continue;
    }
    const bool key_char = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (c == '.') {
      start_run();
      if (++dots >= max_key_parts) return run_start;
    } else if (key_char) {
      start_run();
    } else if (c != ' ' && c != '\t') {
      dots = 0;
      in_run = false;
    }
    advance(i);
  }
  return std::nullopt;
}

}  // namespace

proto::expected<toml::table, std::string> parse_toml(std::string_view content,
                                                     const std::string& path) {
  if (auto deep = first_deep_key(content)) {
    return proto::unexpected{file_position(path, deep->line, deep->column) + "a key of more than " +
                             std::to_string(max_key_parts) + " dotted parts"};
  }
  try {
    return toml::parse(content, path);
  } catch (const toml::parse_error& e) {
    return proto::unexpected{file_position(path, e.source().begin.line, e.source().begin.column) +
                             std::string(e.description())};
  }
}

}  // namespace smtpfault::config::detail
