#include "script/pattern_matcher.hpp"

#include <array>
#include <cstring>
#include <utility>

#include <lua.hpp>

namespace smtpfault::script {

namespace {

// Nested match calls allowed per attempt, as Lua's own matcher (MAXCCALLS): the same patterns
// are "too complex" for both.
constexpr int max_match_depth = 200;
constexpr char escape = '%';

// The character classes of the "C" locale, which Lua's matcher sees through <ctype.h> in a
// process that never calls setlocale; a table keeps the lookups cheap and independent of it.
enum class_bit : std::uint16_t {
  alpha = 1 << 0,
  control = 1 << 1,
  digit = 1 << 2,
  graphic = 1 << 3,
  lower = 1 << 4,
  punctuation = 1 << 5,
  space = 1 << 6,
  upper = 1 << 7,
  alphanumeric = 1 << 8,
  hex_digit = 1 << 9,
  zero = 1 << 10,  // "%z", deprecated since Lua 5.2 but still understood by 5.4
};

constexpr std::array<std::uint16_t, 256> make_char_classes() {
  std::array<std::uint16_t, 256> classes{};
  for (int c = 0; c < 256; ++c) {
    std::uint16_t bits = 0;
    const bool is_upper = c >= 'A' && c <= 'Z';
    const bool is_lower = c >= 'a' && c <= 'z';
    const bool is_digit = c >= '0' && c <= '9';
    const bool is_graphic = c > 32 && c < 127;
    if (is_upper) bits |= upper | alpha | alphanumeric;
    if (is_lower) bits |= lower | alpha | alphanumeric;
    if (is_digit) bits |= digit | alphanumeric | hex_digit;
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) bits |= hex_digit;
    if (c < 32 || c == 127) bits |= control;
    if (is_graphic) bits |= graphic;
    if (is_graphic && !is_upper && !is_lower && !is_digit) bits |= punctuation;
    if (c == ' ' || (c >= '\t' && c <= '\r')) bits |= space;
    if (c == 0) bits |= zero;
    classes[c] = bits;
  }
  return classes;
}
constexpr std::array<std::uint16_t, 256> char_classes = make_char_classes();

// The class each letter after '%' names, "%a" and "%A" alike; 0 where the character after '%'
// stands for itself.
constexpr std::array<std::uint16_t, 256> make_class_letters() {
  std::array<std::uint16_t, 256> letters{};
  const std::pair<char, std::uint16_t> named[] = {
      {'a', alpha},        {'c', control},     {'d', digit}, {'g', graphic},
      {'l', lower},        {'p', punctuation}, {'s', space}, {'u', upper},
      {'w', alphanumeric}, {'x', hex_digit},   {'z', zero}};
  for (const auto& [letter, bit] : named) {
    letters[static_cast<unsigned char>(letter)] = bit;
    letters[static_cast<unsigned char>(letter - 'a' + 'A')] = bit;
  }
  return letters;
}
constexpr std::array<std::uint16_t, 256> class_letters = make_class_letters();

// "%a", "%D", "%.": whether c is in the class named by letter (the complement for an upper-case
// letter), or is letter itself.
bool class_matches(unsigned char c, unsigned char letter) {
  const std::uint16_t bit = class_letters[letter];
  if (bit == 0) return letter == c;
  const bool in_class = (char_classes[c] & bit) != 0;
  return (char_classes[letter] & upper) ? !in_class : in_class;
}

// Whether c is in the set "[...]" that runs from open (its '[') to close (its ']').
bool set_matches(unsigned char c, const char* open, const char* close) {
  const char* p = open + 1;
  bool found = true;  // what finding c means: false for a complemented set "[^...]"
  if (*p == '^') {
    found = false;
    ++p;
  }
  for (; p < close; ++p) {
    if (*p == escape) {
      ++p;
      if (class_matches(c, static_cast<unsigned char>(*p))) return found;
    } else if (p[1] == '-' && p + 2 < close) {
      if (static_cast<unsigned char>(p[0]) <= c && c <= static_cast<unsigned char>(p[2]))
        return found;
      p += 2;
    } else if (static_cast<unsigned char>(*p) == c) {
      return found;
    }
  }
  return !found;
}

}  // namespace

pattern_matcher::pattern_matcher(lua_State* L, const char* subject, std::size_t subject_len,
                                 const char* pattern, std::size_t pattern_len, step_charge charge)
    : L_(L),
      charge_(charge),
      subject_(subject),
      subject_end_(subject + subject_len),
      pattern_end_(pattern + pattern_len) {}

void pattern_matcher::settle() {
  if (steps_ == 0) return;
  const std::uint64_t steps = steps_;
  steps_ = 0;  // before the charge, which may not return
  charge_(L_, steps);
}

const char* pattern_matcher::match_at(const char* s, const char* p) {
  level_ = 0;
  depth_left_ = max_match_depth;
  return match(s, p);
}

const char* pattern_matcher::match(const char* s, const char* p) {
  if (depth_left_-- == 0) luaL_error(L_, "pattern too complex");
  s = match_items(s, p);
  ++depth_left_;
  return s;
}

// Matches the pattern from p on against the subject from s. Items that need to try
// alternatives (captures, repetitions, '?') recurse; the others go on in this loop.
const char* pattern_matcher::match_items(const char* s, const char* p) {
  while (p != pattern_end_) {
    step();
    switch (*p) {
      case '(':
        return p[1] == ')' ? open_capture(s, p + 2, capture_position)
                           : open_capture(s, p + 1, capture_open);
      case ')':
        return close_capture(s, p + 1);
      case '$':
        if (p + 1 == pattern_end_) return s == subject_end_ ? s : nullptr;
        break;  // elsewhere an ordinary character
      case escape:
        if (p[1] == 'b' || p[1] == 'f' || (p[1] >= '0' && p[1] <= '9')) {
          const auto [matched, next] = escape_item(s, p);
          if (!matched) return nullptr;
          s = matched;
          p = next;
          continue;
        }
        break;  // a class such as %a, or an escaped character
      default:
        break;
    }
    // A single-character class, with an optional repetition suffix.
    const char* ep = class_end(p);
    if (!single_match(s, p, ep)) {
      if (*ep == '*' || *ep == '?' || *ep == '-') {
        p = ep + 1;  // zero repetitions are fine
        continue;
      }
      return nullptr;
    }
    switch (*ep) {
      case '?':
        if (const char* end = match(s + 1, ep + 1)) return end;
        p = ep + 1;
        continue;
      case '+':
        return longest(s + 1, p, ep);
      case '*':
        return longest(s, p, ep);
      case '-':
        return shortest(s, p, ep);
      default:
        ++s;
        p = ep;
        continue;
    }
  }
  return s;
}

// %bxy, %f[set] and %0-%9 (a back-reference, %0 refused as Lua does) at p: where the subject goes
// on after them (nullptr when they do not match) and where the pattern does. None takes a
// repetition suffix.
std::pair<const char*, const char*> pattern_matcher::escape_item(const char* s, const char* p) {
  if (p[1] == 'b') return {balanced(s, p + 2), p + 4};
  if (p[1] != 'f') return {back_reference(s, p[1]), p + 2};
  p += 2;
  if (*p != '[') luaL_error(L_, "missing '[' after '%%f' in pattern");
  const char* next = class_end(p);
  const auto previous = static_cast<unsigned char>(s == subject_ ? '\0' : s[-1]);
  const auto current = static_cast<unsigned char>(*s);  // '\0' at the end
  charge_set(p, next - 1);
  const bool frontier = !set_matches(previous, p, next - 1) && set_matches(current, p, next - 1);
  return {frontier ? s : nullptr, next};
}

// "x*" (and "x+" after its first x): as many x as there are, then fewer until the rest matches.
const char* pattern_matcher::longest(const char* s, const char* p, const char* ep) {
  std::ptrdiff_t count = 0;
  while (single_match(s + count, p, ep))
    ++count;
  add_steps(static_cast<std::uint64_t>(count));
  for (; count >= 0; --count) {
    if (const char* end = match(s + count, ep + 1)) return end;
  }
  return nullptr;
}

// "x-": as few x as possible, one more each time the rest fails to match.
const char* pattern_matcher::shortest(const char* s, const char* p, const char* ep) {
  for (;;) {
    if (const char* end = match(s, ep + 1)) return end;
    if (!single_match(s, p, ep)) return nullptr;
    ++s;
  }
}

const char* pattern_matcher::open_capture(const char* s, const char* p, std::ptrdiff_t what) {
  if (level_ >= max_captures) luaL_error(L_, "too many captures");
  captures_[level_] = {s, what};
  ++level_;
  const char* end = match(s, p);
  if (!end) --level_;
  return end;
}

const char* pattern_matcher::close_capture(const char* s, const char* p) {
  int open = level_ - 1;
  while (open >= 0 && captures_[open].len != capture_open)
    --open;
  if (open < 0) luaL_error(L_, "invalid pattern capture");
  captures_[open].len = s - captures_[open].start;
  const char* end = match(s, p);
  if (!end) captures_[open].len = capture_open;
  return end;
}

// "%1".."%9" in a pattern: the text of that (closed) capture again. A position capture never
// matches: its length is no length.
const char* pattern_matcher::back_reference(const char* s, int digit) {
  const int index = digit - '1';
  if (index < 0 || index >= level_ || captures_[index].len == capture_open)
    luaL_error(L_, "invalid capture index %%%d", index + 1);
  const auto len = static_cast<std::size_t>(captures_[index].len);
  if (static_cast<std::size_t>(subject_end_ - s) < len) return nullptr;
  add_steps(len / 32);
  return std::memcmp(captures_[index].start, s, len) == 0 ? s + len : nullptr;
}

// "%bxy": from an x at s to the y that balances it.
const char* pattern_matcher::balanced(const char* s, const char* p) {
  if (p >= pattern_end_ - 1) luaL_error(L_, "malformed pattern (missing arguments to '%%b')");
  if (*s != p[0]) return nullptr;
  const char open = p[0];
  const char close = p[1];
  const char* const start = s;
  int depth = 1;
  while (++s < subject_end_) {
    if (*s == close) {
      if (--depth == 0) break;
    } else if (*s == open) {
      ++depth;
    }
  }
  add_steps(static_cast<std::uint64_t>(s - start));
  return s < subject_end_ ? s + 1 : nullptr;
}

// Where the single-character class at p ends (its suffix, if any, is there).
const char* pattern_matcher::class_end(const char* p) {
  const char first = *p++;
  if (first == escape) {
    if (p == pattern_end_) luaL_error(L_, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (first != '[') return p;
  const char* const open = p;
  if (*p == '^') ++p;
  // The set's first character is a member even when it is ']': "[]]", "[^]]".
  do {
    if (p == pattern_end_) luaL_error(L_, "malformed pattern (missing ']')");
    if (*p++ == escape && p < pattern_end_) ++p;  // "%]" does not end the set
  } while (*p != ']');
  charge_set(open, p);
  return p + 1;
}

// A set is read through on every character tried against it: a long one is a step per 32 of
// its octets, each time, or "[" .. ("b"):rep(1e5) .. "]" would hold the thread for minutes
// on a charge of one step per character.
void pattern_matcher::charge_set(const char* open, const char* close) {
  if (close - open >= 32) add_steps(static_cast<std::uint64_t>(close - open) / 32);
}

bool pattern_matcher::single_match(const char* s, const char* p, const char* ep) {
  if (s >= subject_end_) return false;
  const auto c = static_cast<unsigned char>(*s);
  switch (*p) {
    case '.':
      return true;
    case escape:
      return class_matches(c, static_cast<unsigned char>(p[1]));
    case '[':
      charge_set(p, ep - 1);
      return set_matches(c, p, ep - 1);
    default:
      return static_cast<unsigned char>(*p) == c;
  }
}

std::ptrdiff_t pattern_matcher::capture_text(int i, const char* s, const char* e,
                                             const char** text) {
  if (i >= level_) {
    if (i != 0) luaL_error(L_, "invalid capture index %%%d", i + 1);
    *text = s;  // no captures: the whole match
    return e - s;
  }
  const capture& c = captures_[i];
  if (c.len == capture_open) luaL_error(L_, "unfinished capture");
  *text = c.start;
  if (c.len == capture_position) lua_pushinteger(L_, (c.start - subject_) + 1);
  return c.len;
}

void pattern_matcher::push_capture(int i, const char* s, const char* e) {
  const char* text = nullptr;
  const std::ptrdiff_t len = capture_text(i, s, e, &text);
  if (len != capture_position) lua_pushlstring(L_, text, static_cast<std::size_t>(len));
}

int pattern_matcher::push_captures(const char* s, const char* e) {
  const int count = (level_ == 0 && s) ? 1 : level_;
  luaL_checkstack(L_, count, "too many captures");
  for (int i = 0; i < count; ++i)
    push_capture(i, s, e);
  return count;
}

void pattern_matcher::add_replacement(luaL_Buffer* b, const char* text, std::size_t len,
                                      const char* s, const char* e) {
  while (const auto* percent = static_cast<const char*>(std::memchr(text, escape, len))) {
    luaL_addlstring(b, text, static_cast<std::size_t>(percent - text));
    const char code = percent[1];  // the string's '\0' when '%' is its last character
    if (code == escape) {
      luaL_addchar(b, escape);
    } else if (code == '0') {
      luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    } else if (code >= '1' && code <= '9') {
      const char* capture = nullptr;
      const std::ptrdiff_t capture_len = capture_text(code - '1', s, e, &capture);
      if (capture_len == capture_position) {
        luaL_addvalue(b);  // the position capture_text pushed
      } else {
        luaL_addlstring(b, capture, static_cast<std::size_t>(capture_len));
      }
    } else {
      luaL_error(L_, "invalid use of '%c' in replacement string", escape);
    }
    len -= static_cast<std::size_t>(percent + 2 - text);
    text = percent + 2;
  }
  luaL_addlstring(b, text, len);
}

}  // namespace smtpfault::script
