#include "json/duplicate_keys.hpp"

#include <gtest/gtest.h>

namespace smtpfault::json {
namespace {

TEST(duplicate_keys, the_first_key_given_twice_is_named_by_its_path) {
  EXPECT_EQ(first_duplicate_key(R"({"match": {"on": "RCPT"}, "match": {"on": "MAIL"}})"), "match");
  EXPECT_EQ(first_duplicate_key(R"({"action": {"reply": {"code": 451, "code": 550}}})"),
            "action.reply.code");
  EXPECT_EQ(first_duplicate_key(R"({"each": [{"a": 1}, {"b": 2, "b": 3}]})"), "each.b");
  // A key split by an escape is still the same key.
  EXPECT_EQ(first_duplicate_key(R"({"name": 1, "n\u0061me": 2})"), "name");
}

TEST(duplicate_keys, equal_keys_in_different_objects_are_fine) {
  EXPECT_EQ(first_duplicate_key(R"({"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]})"),
            std::nullopt);
  EXPECT_EQ(first_duplicate_key("[1, 2, 2]"), std::nullopt);
  EXPECT_EQ(first_duplicate_key("{not json"), std::nullopt);  // the parser proper says so
  EXPECT_EQ(first_duplicate_key(""), std::nullopt);
}

}  // namespace
}  // namespace smtpfault::json
