// string.find, match, gmatch and gsub of the sandbox (lua_patterns) against Lua's own: every
// case runs in a plain lua_State with the real string library and in a lua_sandbox, and all
// results (types and values) or the error messages must be the same.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <lua.hpp>

#include "script/lua_sandbox.hpp"

namespace smtpfault::script {
namespace {

// Every value as "type:value", strings quoted; a gmatch iterator as the list of its results.
constexpr const char* serializer = R"(
local function show(v)
  local t = type(v)
  if t == 'string' then return string.format('%q', v) end
  if t == 'number' then return math.type(v) .. ':' .. tostring(v) end
  if t == 'function' or t == 'table' then return t end
  return t .. ':' .. tostring(v)
end
function __ser(...)
  local out = {}
  for i = 1, select('#', ...) do out[i] = show((select(i, ...))) end
  return select('#', ...) .. '|' .. table.concat(out, ',')
end
function __gm(iterator)
  local out = {}
  for _ = 1, 500 do
    local got = table.pack(iterator())
    out[#out + 1] = __ser(table.unpack(got, 1, got.n))
    if got[1] == nil then break end
  end
  return table.concat(out, ' ; ')
end
)";

// A Lua string literal for any bytes.
std::string lua_literal(std::string_view text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    char escape[8];
    std::snprintf(escape, sizeof escape, "\\%d", c);
    out += escape;
  }
  return out + "\"";
}

class real_and_sandboxed {
 public:
  real_and_sandboxed() : real_(luaL_newstate()), sandbox_(sandbox_limits{}) {
    luaL_openlibs(real_);
    for (lua_State* L : {real_, sandbox_.state()}) {
      if (luaL_dostring(L, serializer) != LUA_OK) ADD_FAILURE() << lua_tostring(L, -1);
      lua_settop(L, 0);
    }
  }
  ~real_and_sandboxed() { lua_close(real_); }
  real_and_sandboxed(const real_and_sandboxed&) = delete;
  real_and_sandboxed& operator=(const real_and_sandboxed&) = delete;

  // The serialized outcome of `return <expression>` in each state: {real, sandboxed}.
  std::pair<std::string, std::string> run(const std::string& expression) {
    const std::string chunk = "return __ser(pcall(function() return " + expression + " end))";
    return {run_in(real_, chunk), run_in(sandbox_.state(), chunk)};
  }

 private:
  static std::string run_in(lua_State* L, const std::string& chunk) {
    std::string out;
    if (luaL_loadbuffer(L, chunk.data(), chunk.size(), "=case") != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK) {
      out = std::string("chunk failed: ") + lua_tostring(L, -1);
    } else {
      out = lua_tostring(L, -1);
    }
    lua_settop(L, 0);
    return out;
  }

  lua_State* real_;
  lua_sandbox sandbox_;
};

struct pattern_case {
  const char* function;  // find, match, gmatch, gsub, or "" for an expression of its own
  std::string subject;
  std::string pattern;
  std::string more = "";  // further arguments, as Lua text
};

std::string expression_of(const pattern_case& c) {
  if (std::string_view(c.function).empty()) return c.subject;
  std::string args = lua_literal(c.subject) + ", " + lua_literal(c.pattern);
  if (!c.more.empty()) args += ", " + c.more;
  const std::string call = std::string("string.") + c.function + "(" + args + ")";
  return std::string_view(c.function) == "gmatch" ? "__gm(" + call + ")" : call;
}

const std::vector<pattern_case>& corpus() {
  static const std::vector<pattern_case> cases = [] {
    std::vector<pattern_case> v;
    // Plain text and the plain flag.
    for (const char* p : {"", "o", "hello", "o w", "xyz", "d", "hello world!", "."}) {
      v.push_back({"find", "hello world", p});
      v.push_back({"find", "hello world", p, "1, true"});
      v.push_back({"find", "a.b.c", p, "3, true"});
    }
    // init: positive, negative, zero, past the end, huge.
    for (const char* init : {"1",
                             "2",
                             "5",
                             "11",
                             "12",
                             "13",
                             "100",
                             "0",
                             "-1",
                             "-3",
                             "-11",
                             "-12",
                             "-100",
                             "math.maxinteger",
                             "math.mininteger",
                             "2.0",
                             "'3'",
                             "3.5",
                             "'x'",
                             "{}",
                             "nil"}) {
      v.push_back({"find", "hello world", "o", init});
      v.push_back({"find", "hello world", "", init});
      v.push_back({"find", "hello world", "o.", init});
      v.push_back({"find", "hello world", "^h", init});
      v.push_back({"match", "hello world", "(o)(.)", init});
      v.push_back({"match", "hello world", "", init});
      v.push_back({"gmatch", "hello world", "o", init});
      v.push_back({"gmatch", "hello world", "", init});
    }
    // Classes, their complements, escapes.
    const std::string all_bytes = [] {
      std::string s;
      for (int c = 0; c < 256; ++c)
        s += static_cast<char>(c);
      return s;
    }();
    for (const char* cls :
         {"%a",   "%c",      "%d",     "%g",    "%l",          "%p",     "%s",   "%u",
          "%w",   "%x",      "%A",     "%C",    "%D",          "%G",     "%L",   "%P",
          "%S",   "%U",      "%W",     "%X",    "%.",          "%%",     "%z",   "%Z",
          "%1x",  ".",       "[%a_]",  "[^%s]", "[%]]",        "[]]",    "[^]]", "[a-]",
          "[-a]", "[a-c-e]", "[%a-z]", "[z-a]", "[\xe0-\xff]", "[^%d%s]"}) {
      v.push_back({"gsub", all_bytes, std::string(cls) + "+", "'<%0>'"});
      v.push_back({"find", "  x1_Y-z\t", std::string(cls) + "+"});
    }
    // Quantifiers and anchors.
    for (const char* p : {"a*",  "a+",     "a-",     "a?",  "a*b",      "a+b",   "a-b",
                          "a?b", "^a*",    "^a-$",   "a*$", "^$",       "$",     "^",
                          "a$b", "^^a",    "a^",     "$$",  "(a*)(b*)", "a-(b)", ".-b",
                          ".*b", "[ab]*c", "%a+%d?", "x*",  "x?x?x?",   "b*$",   "^(a-)(a*)$"}) {
      for (const char* s : {"", "a", "aaab", "baaac", "ab$b", "a^", "^^a", "xxb", "aab$$"}) {
        v.push_back({"find", s, p});
        v.push_back({"match", s, p});
        v.push_back({"gmatch", s, p});
        v.push_back({"gsub", s, p, "'-'"});
      }
    }
    // Captures, position captures, back-references.
    for (const char* p :
         {"()", "()a()", "(a)(b)", "((a)(b))", "(a*(.)%w(%s*))", "(h)(e)(l)", "()ll()", "(l)%1",
          "(l+)%1", "(.)%1", "()%1", "(%a+)=(%w+)", "([\"'])(.-)%1",
          "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)", "((((((x))))))", "(()(a))", "(.)()"}) {
      for (const char* s :
           {"hello", "aabcdefghijk", "key=val, k2=v2", "say \"hi\" 'x'", "x", "abcdefghij"}) {
        v.push_back({"find", s, p});
        v.push_back({"match", s, p});
        v.push_back({"gmatch", s, p});
        v.push_back({"gsub", s, p, "'[%1|%0]'"});
      }
    }
    // %b and %f.
    for (const char* p :
         {"%b()", "%b[]", "%bxy", "%b((", "%b))", "(%b())", "%f[%w]%w+", "%f[%W]", "%f[%a]",
          "%f[%z]", "%f[^%z]", "%f[%l]%a", "%f[a-z]", "%f[%s]()", "THE (%f[%a]%a+)"}) {
      for (const char* s :
           {"f(a(b)c)d)", "((", "))((", "x[y[z]]", "THE (quick) fox", "xaay", "hello world", ""}) {
        v.push_back({"find", s, p});
        v.push_back({"gmatch", s, p});
        v.push_back({"gsub", s, p, "'<%0>'"});
      }
    }
    // gmatch: empty matches, where the previous one ended, '^' as an ordinary character.
    for (const char* p : {"a*", "%w*", "()", ".-", "^a", "^", "b*", "(a?)"}) {
      for (const char* s : {"", "abc", "aab ba", "^a^a", "bbb"})
        v.push_back({"gmatch", s, p});
    }
    // gsub: every replacement kind, false and nil keep the text, max n.
    const char* replacements[] = {"'x'",
                                  "''",
                                  "'%%'",
                                  "'%0%0'",
                                  "'%1'",
                                  "'%2'",
                                  "'%9'",
                                  "'%'",
                                  "'a%'",
                                  "'%x'",
                                  "'%\\0'",
                                  "12",
                                  "1.5",
                                  "{a = 'A', b = false, c = 3, ab = 'AB', [''] = 'E'}",
                                  "{}",
                                  "{a = true}",
                                  "{a = {}}",
                                  "function(...) return select('#', ...) end",
                                  "function(x) return x == 'a' and 'A' or nil end",
                                  "function() return false end",
                                  "function(a, b) return (b or a) .. '!' end",
                                  "function() return {} end",
                                  "string.upper",
                                  "nil",
                                  "true",
                                  ""};
    for (const char* r : replacements) {
      for (const char* p : {"a", "(a)(b)", "%w+", "", "()", "(a)()", "^a", "b*"}) {
        v.push_back({"gsub", "abcab", p, r});
      }
    }
    for (const char* n : {"0", "1", "2", "-1", "100", "1.0", "1.5", "'2'", "nil", "{}"}) {
      v.push_back({"gsub", "abcabc", "b", "'X', " + std::string(n)});
      v.push_back({"gsub", "abc", "", "'-', " + std::string(n)});
    }
    // Malformed patterns and bad captures: the error text.
    for (const char* p :
         {"%",  "a%",  "[",    "[a",  "[^",    "[%",    "[%]", "[a-",    "(",  "(a",
          ")",  "a)",  "(a))", "%1",  "(a%1)", "(a)%2", "%0",  "(()%1)", "%b", "%ba",
          "%f", "%fa", "%f[a", "%g[", "(()",   "a(",    "[]",  "[^]"}) {
      for (const char* s : {"", "abc(", "a)"}) {
        v.push_back({"find", s, p});
        v.push_back({"match", s, p});
        v.push_back({"gmatch", s, p});
        v.push_back({"gsub", s, p, "'x'"});
        v.push_back({"gsub", s, p, "function(...) return '' end"});
      }
    }
    const std::string deep = [] {
      std::string s;
      for (int i = 0; i < 40; ++i)
        s += "(";
      for (int i = 0; i < 40; ++i)
        s += ")";
      return s;
    }();
    v.push_back({"find", "", deep});
    v.push_back({"find", "aaa", std::string(300, 'a') + "?"});
    for (const int n : {190, 198, 199, 200, 201, 210}) {
      std::string p;
      for (int i = 0; i < n; ++i)
        p += "a?";
      v.push_back({"find", std::string(n, 'a'), p});
      v.push_back({"match", std::string(n, 'b'), std::string(n, '.') + "x*"});
    }
    // Lua allows 32 captures.
    for (const int n : {31, 32, 33}) {
      std::string positions;
      std::string texts;
      for (int i = 0; i < n; ++i) {
        positions += "()";
        texts += "(.)";
      }
      v.push_back({"find", "abc", positions});
      v.push_back({"match", std::string(40, 'x'), texts});
      v.push_back(
          {"gsub", std::string(40, 'x'), texts, "function(...) return select('#', ...) end"});
    }
    // Embedded zeros.
    v.push_back({"find", std::string("a\0b\0c", 5), std::string("\0", 1)});
    v.push_back({"find", std::string("a\0b\0c", 5), std::string("b\0", 2)});
    v.push_back({"find", std::string("a\0b\0c", 5), std::string("%z", 2)});
    v.push_back({"find", std::string("a\0b\0c", 5), std::string("[\0]", 3)});
    v.push_back({"gsub", std::string("a\0b\0c", 5), std::string(".\0", 2), "'%0%0'"});
    v.push_back({"find", "a$", std::string("$\0", 2)});
    // Argument checks, method calls, numbers as strings.
    for (const char* e : {"string.find()",
                          "string.find('a')",
                          "string.find(nil, 'a')",
                          "string.find('a', {})",
                          "string.find(123, 2)",
                          "string.find(1.5, '%.')",
                          "string.match()",
                          "string.match('a', nil)",
                          "string.gmatch('a')",
                          "string.gmatch(nil, 'a')",
                          "string.gmatch('a', 'a', 'x')",
                          "string.gsub('a', 'a')",
                          "string.gsub('a')",
                          "string.gsub('a', 'a', nil, 'x')",
                          "string.gsub(12321, 2, 0)",
                          "string.gsub('a', 'a', 'b', {})",
                          "('abc'):find('b')",
                          "('abc'):find()",
                          "('abc'):gsub('b', {})",
                          "('abc'):match('(b)(c)')",
                          "('a'):gsub(nil)",
                          "string.find('abc', 'b', nil, nil)",
                          "string.find('abc', 'b', 1, 0)",
                          "string.find('a+b', '+', 1, 'yes')",
                          "string.find('a+b', '+', 1, false)",
                          "__gm(('k=v, x=y'):gmatch('(%w+)=(%w+)'))",
                          "select('#', ('abc'):find('b'))",
                          "select('#', ('abc'):gsub('x', 'y'))",
                          "('abc'):gsub('%w', '%1', 2)"}) {
      v.push_back({"", e, ""});
    }
    return v;
  }();
  return cases;
}

TEST(bounded_patterns, agree_with_lua_on_the_corpus) {
  real_and_sandboxed states;
  ASSERT_GE(corpus().size(), 300u);
  int errors = 0;
  for (const auto& c : corpus()) {
    const std::string expression = expression_of(c);
    const auto [real, ours] = states.run(expression);
    EXPECT_EQ(ours, real) << expression;
    errors += real.rfind("2|boolean:false", 0) == 0;
  }
  RecordProperty("cases", static_cast<int>(corpus().size()));
  RecordProperty("errors", errors);
}

// Random patterns over a small alphabet rich in special characters: most are malformed or
// match oddly, which is the point.
TEST(bounded_patterns, agree_with_lua_on_random_patterns) {
  static const char* const pattern_pieces[] = {
      "a",    "b",     ".",      "%",    "-",    "*",     "+",  "?",  "(",  ")",
      "[",    "]",     "^",      "$",    "%a",   "%d",    "%s", "%W", "%1", "%2",
      "%b()", "%f[a]", "%f[%w]", "[ab]", "[^a]", "[a-c]", "()", "%%", "%.", "a"};
  static const char subject_chars[] = "aab()[]^$%-. 1A\nb";
  std::mt19937 random(20240601);
  const auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
  real_and_sandboxed states;
  const char* const replacements[] = {"'<%0>'", "'%1'", "'%2%%'",
                                      "function(...) return table.concat({...}, '|') end",
                                      "{a = 'A', b = false}"};
  int cases = 0;
  int errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string pattern;
    for (int n = pick(8); n >= 0; --n)
      pattern += pattern_pieces[pick(std::size(pattern_pieces))];
    std::string subject;
    for (int n = pick(13); n > 0; --n)
      subject += subject_chars[pick(sizeof subject_chars - 1)];
    const std::string init = std::to_string(pick(9) - 3);
    const std::vector<pattern_case> variants = {
        {"find", subject, pattern, init},
        {"match", subject, pattern},
        {"gmatch", subject, pattern, init},
        {"gsub", subject, pattern, replacements[pick(std::size(replacements))]},
        {"gsub", subject, pattern, "'x', " + std::to_string(pick(3))},
    };
    for (const auto& c : variants) {
      const std::string expression = expression_of(c);
      const auto [real, ours] = states.run(expression);
      ASSERT_EQ(ours, real) << expression;
      ++cases;
      errors += real.rfind("2|boolean:false", 0) == 0;
    }
  }
  EXPECT_EQ(cases, 15000);
  RecordProperty("errors", errors);
}

}  // namespace
}  // namespace smtpfault::script
