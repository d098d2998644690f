// The Lua state's cache of small blocks: blocks never overlap, a freed block is handed out
// again, the cache stays small, and what a block holds survives a move between sizes.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "harness.hpp"
#include "script/small_blocks.hpp"

namespace smtpfault::script::testing {
namespace {

TEST(small_blocks, size_classes_are_sixteen_bytes_wide) {
  EXPECT_TRUE(small_blocks::same_class(1, 16));
  EXPECT_FALSE(small_blocks::same_class(16, 17));
  EXPECT_TRUE(small_blocks::same_class(241, 256));
}

TEST(small_blocks, many_blocks_keep_what_was_written) {
  small_blocks pool;
  std::vector<std::pair<unsigned char*, std::size_t>> taken;
  for (std::size_t i = 0; i < 5000; ++i) {
    const std::size_t size = 1 + i % small_blocks::largest;
    auto* b = static_cast<unsigned char*>(pool.take(size));
    ASSERT_NE(b, nullptr);
    std::memset(b, static_cast<int>(i & 0xff), size);
    taken.emplace_back(b, size);
  }
  for (std::size_t i = 0; i < taken.size(); ++i) {
    const auto [b, size] = taken[i];
    for (std::size_t k = 0; k < size; ++k)
      ASSERT_EQ(b[k], i & 0xff) << "block " << i << " byte " << k;
  }
  for (const auto& [b, size] : taken)
    pool.give_back(b, size);
}

TEST(small_blocks, a_block_given_back_is_the_next_of_its_class) {
  small_blocks pool;
  void* a = pool.take(40);
  void* other = pool.take(100);
  pool.give_back(a, 40);
  EXPECT_EQ(pool.take(33), a);  // the same class: 33..48 bytes
  void* second = pool.take(40);
  EXPECT_NE(second, a);  // handed out already
  pool.give_back(other, 100);
  void* small = pool.take(20);
  EXPECT_NE(small, other);  // another class
  for (auto [block, size] : {std::pair{a, 33}, {second, 40}, {small, 20}})
    pool.give_back(block, size);  // the pool frees what it keeps; what is out is the taker's
}

TEST(small_blocks, the_cache_keeps_at_most_64_KiB_of_a_size_class) {
  // Churning one size class after another must not leave the state holding what each churn
  // freed: past its share, a block goes back to the C library.
  small_blocks pool;
  for (std::size_t size : {16, 32, 100, 256}) {
    std::vector<void*> taken;
    for (int i = 0; i < 20'000; ++i)
      taken.push_back(pool.take(size));
    for (void* b : taken)
      pool.give_back(b, size);
  }
  // Four classes full: 64 KiB each, less what a block of 112 bytes leaves unused of it.
  EXPECT_LE(pool.cached_bytes(), 4 * small_blocks::kept_bytes_per_class);
  EXPECT_GT(pool.cached_bytes(), 4 * small_blocks::kept_bytes_per_class - 112);
}

TEST(small_blocks, tables_and_strings_that_outgrow_the_pool_keep_their_contents) {
  // Tables grow through every size class into blocks of the C library and strings are made
  // of every length around the pool's limit: the sums only come out if nothing was lost in
  // the moves between the two.
  EXPECT_EQ(eval("(function() local t, n = {}, 0 "
                 "for i = 1, 2000 do t[i] = i; t['k' .. i] = i end "
                 "for i = 1, 2000 do n = n + t[i] + t['k' .. i] end "
                 "local s = 0 "
                 "for len = 200, 300 do s = s + #string.rep('x', len) end "
                 "return n .. ' ' .. s end)()"),
            "4002000 25250");
}

}  // namespace
}  // namespace smtpfault::script::testing
