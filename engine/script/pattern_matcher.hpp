// The matcher behind lua_patterns: Lua 5.4 pattern matching over one subject and one pattern,
// counting its steps. Errors (a malformed pattern, a spent budget) are raised as Lua errors,
// which unwind with longjmp: this type has a trivial destructor and owns nothing, so it may live
// on the C stack or in a Lua userdata.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "script/lua_patterns.hpp"

struct luaL_Buffer;

namespace smtpfault::script {

class pattern_matcher {
 public:
  // Subject and pattern must stay alive (and in place) while the matcher is used. Both are Lua
  // strings, which always have a '\0' after their last byte: the pattern grammar reads that byte
  // (a pattern item's suffix after the last one; what "%f" sees at the subject's end).
  pattern_matcher(lua_State* L, const char* subject, std::size_t subject_len, const char* pattern,
                  std::size_t pattern_len, step_charge charge);

  // A gmatch iterator may be called from another coroutine than the one that made it.
  void use_state(lua_State* L) { L_ = L; }

  const char* subject() const { return subject_; }
  const char* subject_end() const { return subject_end_; }

  // Where a match of pattern (from p, inside the pattern given) starting exactly at s ends, or
  // nullptr. Forgets the captures of any earlier attempt.
  const char* match_at(const char* s, const char* p);

  // Pushes the captures of the last match, or the whole match s..e when the pattern has none
  // and s is not nullptr. Returns how many values were pushed.
  int push_captures(const char* s, const char* e);
  // Pushes capture i (0-based) of the last match: the whole match when there are none.
  void push_capture(int i, const char* s, const char* e);
  // Appends a gsub replacement string, with %0-%9 and %% expanded, for the match s..e.
  void add_replacement(luaL_Buffer* b, const char* text, std::size_t len, const char* s,
                       const char* e);

  // Charges the steps not yet charged (at the end of a library call).
  void settle();
  // Counts work done outside the matcher proper (a plain search) in steps.
  void add_steps(std::uint64_t n) {
    steps_ += n;
    if (steps_ >= pattern_charge_interval) settle();
  }

 private:
  struct capture {
    const char* start;
    std::ptrdiff_t len;  // or capture_open, capture_position
  };
  static constexpr int max_captures = 32;  // LUA_MAXCAPTURES
  static constexpr std::ptrdiff_t capture_open = -1;
  static constexpr std::ptrdiff_t capture_position = -2;

  const char* match(const char* s, const char* p);
  const char* match_items(const char* s, const char* p);
  std::pair<const char*, const char*> escape_item(const char* s, const char* p);
  const char* longest(const char* s, const char* p, const char* ep);
  const char* shortest(const char* s, const char* p, const char* ep);
  const char* open_capture(const char* s, const char* p, std::ptrdiff_t what);
  const char* close_capture(const char* s, const char* p);
  const char* back_reference(const char* s, int digit);
  const char* balanced(const char* s, const char* p);
  const char* class_end(const char* p);
  bool single_match(const char* s, const char* p, const char* ep);
  void charge_set(const char* open, const char* close);
  // The length of capture i, or capture_position after pushing its position; *text its start.
  std::ptrdiff_t capture_text(int i, const char* s, const char* e, const char** text);
  void step() {
    if (++steps_ >= pattern_charge_interval) settle();
  }

  lua_State* L_;
  step_charge charge_;
  const char* subject_;
  const char* subject_end_;
  const char* pattern_end_;
  std::uint64_t steps_ = 0;
  int depth_left_ = 0;  // nested match calls left before "pattern too complex"
  int level_ = 0;       // captures opened so far
  capture captures_[max_captures];
};

static_assert(std::is_trivially_destructible_v<pattern_matcher>,
              "a Lua error unwinds past the matcher with longjmp");

}  // namespace smtpfault::script
