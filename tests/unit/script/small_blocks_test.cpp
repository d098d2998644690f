// The Lua state's pool of small blocks: blocks never overlap, a freed block is handed out
// again, and what a block holds survives a move between the pool and the C library.
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

TEST(small_blocks, blocks_across_many_slabs_keep_what_was_written) {
  small_blocks pool;
  std::vector<std::pair<unsigned char*, std::size_t>> taken;
  for (std::size_t i = 0; i < 5000; ++i) {  // about 600 KiB: ten slabs and more
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
  EXPECT_NE(pool.take(40), a);  // handed out already
  pool.give_back(other, 100);
  EXPECT_NE(pool.take(20), other);  // another class
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
