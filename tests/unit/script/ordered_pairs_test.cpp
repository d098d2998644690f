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

TEST(ordered_pairs, numbers_are_ordered_exactly_across_integers_and_floats) {
  // A double holds no integer beyond 2^53 exactly: as doubles, math.maxinteger and 2^63 (a float
  // key: Lua keeps integral floats within range as integers) would be equal. Lua compares them
  // exactly, and so does the order.
  EXPECT_EQ(eval("(function() local out = {} "
                 "for k in pairs({[math.maxinteger] = 1, [2.0^63] = 2, [-2.0^64] = 3, "
                 "[math.mininteger] = 4, [(1 << 51) + 1] = 5, [2.0^51 + 0.5] = 6, [1 << 51] = 7}) "
                 "do out[#out + 1] = math.type(k) .. ' ' .. tostring(k) end "
                 "return table.concat(out, ', ') end)()"),
            "float -1.844674407371e+19, integer -9223372036854775808, integer 2251799813685248, "
            "float 2.2517998136852e+15, integer 2251799813685249, integer 9223372036854775807, "
            "float 9.2233720368548e+18");
  // n integers just below 2^63 (all 2^63 as doubles) and 2^63 itself, for n from 1 to 20:
  // ascending by Lua's own <, the float last, every time.
  EXPECT_EQ(eval("(function() local wrong = {} "
                 "for n = 1, 20 do "
                 "local t, prev, ascending = {[2.0^63] = 1}, nil, true "
                 "for i = 1, n do t[math.maxinteger - i + 1] = 1 end "
                 "for k in pairs(t) do ascending = ascending and (prev == nil or prev < k); "
                 "prev = k end "
                 "if not ascending or math.type(prev) ~= 'float' then wrong[#wrong + 1] = n end "
                 "end return 'wrong for ' .. table.concat(wrong, ',') end)()"),
            "wrong for ");
}

// Twenty-six words as keys: Lua's own order is this one about once in 26! tables, so pairs()
// sorts, and the iterator is its own (for keys already in order it hands out Lua's next).
const std::string words =
    "t = {}\n"
    "for w in ('xray golf alpha zulu mike delta quebec kilo bravo yankee echo oscar lima hotel "
    "sierra charlie juliett papa india tango foxtrot uniform victor romeo november whiskey'):"
    "gmatch('%a+') do t[w] = true end\n"
    "it, state, first = pairs(t)\n";

TEST(ordered_pairs, the_iterator_follows_the_control_value_as_next_does) {
  ASSERT_EQ(eval("it == next", words), "false");
  // Called again with the same control value, the same key; with another, the one after it.
  EXPECT_EQ(eval("it(state, first) .. it(state, first) .. it(state, 'alpha') .. "
                 "it(state, 'yankee') .. tostring(it(state, 'zulu'))",
                 words),
            "alphaalphabravozulunil");
  // The table is the iterator's own, whatever is passed: nothing to crash on.
  EXPECT_EQ(eval("it() .. it('not a table') .. it(42, 'bravo')", words), "alphaalphacharlie");
  EXPECT_THAT(eval("select(2, pcall(it, state, 'zz'))", words), HasSubstr("invalid key to 'next'"));
  // A second loop over the same triple starts from the first key again.
  EXPECT_EQ(eval("(function() local n = 0 for _ = 1, 2 do for k in it, state, first do n = n + 1 "
                 "end end return n end)()",
                 words),
            "52");
}

TEST(ordered_pairs, a_pairs_metamethod_may_sleep) {
  driver d(R"(
function on_connect(s)
  local n = 0
  local t = setmetatable({}, {__pairs = function(t)
    smtp.sleep(0)
    return next, {x = 1, y = 2}, nil
  end})
  for k in pairs(t) do n = n + 1 end
  return smtp.reply(250, tostring(n))
end
)");
  ASSERT_EQ(d.start(hook::connect).st, status::sleeping);
  auto o = d.resume();
  ASSERT_EQ(o.st, status::done) << o.error;
  EXPECT_EQ(text_of(o), "2");
}

TEST(ordered_pairs, sorting_counts_towards_the_instruction_limit) {
  // 100,000 keys made while the file loads (its own budget); one pairs() in a hook with a budget
  // of 10,000 instructions: the keys walked and compared are charged like instructions.
  scenario_options o = quick_options();
  o.limits.instructions = 10'000;
  driver d(R"(
big = {}
for i = 1, 100000 do big["k" .. i] = i end
function on_connect(s)
  for k in pairs(big) do break end
  return smtp.reply(250)
end
)",
           o);
  auto r = d.start(hook::connect);
  ASSERT_EQ(r.st, status::failed);
  EXPECT_THAT(r.error, HasSubstr("test.lua:5: instruction limit exceeded (possible endless loop)"));
}

TEST(ordered_pairs, an_array_is_walked_without_a_copy) {
  // Keys that Lua already hands out in order: Lua's own next comes back.
  EXPECT_EQ(eval("pairs({10, 20, 30}) == next"), "true");
  EXPECT_EQ(eval("pairs(t) == next", words), "false");
}

TEST(ordered_pairs, every_key_comes_once_in_random_tables_also_when_cleared_on_the_way) {
  // 200 tables of random keys of every kind (integers in and out of the array part, floats,
  // strings, booleans, tables): pairs visits the keys next visits, each once, in ascending order
  // within numbers and within strings; clearing each key as it comes changes nothing of that.
  EXPECT_EQ(eval(R"((function()
  local problems = 0
  for round = 1, 200 do
    local t, n = {}, math.random(0, 40)
    for i = 1, n do
      local kind = math.random(6)
      local k = kind == 1 and i or kind == 2 and math.random(-1000, 1000)
             or kind == 3 and math.random() * 100 or kind == 4 and ("s" .. math.random(1000))
             or kind == 5 and (math.random(2) == 1) or {}
      t[k] = i
    end
    local expected = 0
    for _ in next, t do expected = expected + 1 end
    for _, clear in ipairs({false, true}) do
      local copy = {}
      for k, v in next, t do copy[k] = v end
      local seen, count, last_number, last_string = {}, 0, nil, nil
      for k in pairs(copy) do
        if seen[k] then problems = problems + 1 end
        seen[k] = true
        count = count + 1
        if type(k) == "number" then
          if last_number and not (last_number < k) then problems = problems + 1 end
          last_number = k
        elseif type(k) == "string" then
          if last_string and not (last_string < k) then problems = problems + 1 end
          last_string = k
        end
        if clear then copy[k] = nil end
      end
      if count ~= expected then problems = problems + 1 end
    end
  end
  return problems
end)())"),
            "0");
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
