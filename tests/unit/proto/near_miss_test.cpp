// "Did you mean": edit distances (a swap of neighbours is one edit) and which candidate is
// offered, also for words far too long to be a slip of any name.
#include "proto/near_miss.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace smtpfault::proto {
namespace {

TEST(edit_distance, counts_edits_and_swaps) {
  EXPECT_EQ(edit_distance("lmtp", "lmtp"), 0u);
  EXPECT_EQ(edit_distance("lmpt", "lmtp"), 1u);  // one swap
  EXPECT_EQ(edit_distance("rejct", "reject"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("abcdef", "badcfe"), 3u);
}

TEST(did_you_mean, offers_the_closest_plausible_slip) {
  const std::vector<std::string> names = {"reply", "reject", "reset", "relay"};
  EXPECT_EQ(did_you_mean("rejct", names), " (did you mean 'reject'?)");
  EXPECT_EQ(did_you_mean("xyzzy", names), "");
}

TEST(did_you_mean, a_huge_word_is_answered_at_once) {
  const std::string huge(10'000'000, 'a');
  const std::vector<std::string> names(1000, "aaaa");
  // The lengths rule every candidate out; computing the tables would take minutes here.
  EXPECT_EQ(did_you_mean(huge, names), "");
  EXPECT_EQ(edit_distance(std::string(100'000, 'a'), "ab"), 99'999u);
}

}  // namespace
}  // namespace smtpfault::proto
