// pairs() goes through keys in an order of their own (script/ordered_pairs.hpp), so that a
// scenario that logs or decides in a pairs() loop gives the same transcript under one seed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;

// The keys of t, as pairs() hands them out, joined with spaces.
const std::string keys_of = R"(
function keys_of(t)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = tostring(k) end
  return table.concat(out, " ")
end
)";

TEST(ordered_pairs, numbers_then_strings_in_byte_order_then_booleans) {
  EXPECT_EQ(eval("keys_of({b = 1, a = 2, [10] = 3, [2] = 4, [true] = 5, [false] = 6, [1.5] = 7, "
                 "aa = 8, B = 9, [-3] = 10})",
                 keys_of),
            "-3 1.5 2 10 B a aa b false true");
}

TEST(ordered_pairs, the_order_does_not_depend_on_the_order_of_insertion) {
  // 300 keys, inserted forwards and backwards: in both, the order of a sort of the keys.
  const std::string prelude = keys_of + R"(
function build(from, to, step)
  local t = {}
  for i = from, to, step do t["key" .. (i * 7919 % 1000)] = i end
  return t
end
function sorted_keys(t)
  local ks = {}
  for k in next, t do ks[#ks + 1] = k end
  table.sort(ks)
  return table.concat(ks, " ")
end
)";
  EXPECT_EQ(eval("keys_of(build(1, 300, 1)) == keys_of(build(300, 1, -1))", prelude), "true");
  EXPECT_EQ(eval("keys_of(build(1, 300, 1)) == sorted_keys(build(1, 300, 1))", prelude), "true");
}

TEST(ordered_pairs, the_array_part_comes_in_order_and_holes_are_skipped) {
  EXPECT_EQ(eval("keys_of({'a', 'b', nil, 'd', x = 1})", keys_of), "1 2 4 x");
}

TEST(ordered_pairs, a_field_cleared_during_the_loop_is_passed_over) {
  EXPECT_EQ(eval("(function() local t, seen = {a = 1, b = 2, c = 3}, {} "
                 "for k in pairs(t) do seen[#seen + 1] = k; t.b = nil end "
                 "return table.concat(seen, ' ') end)()"),
            "a c");
}

TEST(ordered_pairs, a_pairs_metamethod_is_honoured) {
  EXPECT_EQ(eval("keys_of(setmetatable({}, {__pairs = function(t) "
                 "return function(_, k) if not k then return 'only', 1 end end, t, nil end}))",
                 keys_of),
            "only");
}

TEST(ordered_pairs, a_value_that_is_no_table_is_an_argument_error) {
  EXPECT_THAT(eval("pairs(nil)"),
              HasSubstr("bad argument #1 to 'pairs' (table expected, got nil)"));
}

TEST(ordered_pairs, an_empty_table_gives_nothing) {
  EXPECT_EQ(eval("keys_of({})", keys_of), "");
}

}  // namespace
}  // namespace smtpfault::script::testing
