// json_text: numbers as people write them, and nothing else changed from Boost's own writer.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "json/json_text.hpp"

namespace smtpfault::json {
namespace {

namespace bj = boost::json;

TEST(json_text, doubles_are_written_plain_and_read_back_the_same) {
  EXPECT_EQ(json_text(0.1), "0.1");
  EXPECT_EQ(json_text(1.5), "1.5");
  EXPECT_EQ(json_text(2.0), "2.0") << "a whole double stays a real, not an integer";
  EXPECT_EQ(json_text(-0.25), "-0.25");
  EXPECT_EQ(json_text(1234.567), "1234.567");
  // Read back exactly (Boost 1.81's own parser rounds some extreme values, so strtod reads them).
  for (double d : {0.1, 1.0 / 3, 1e-7, 6.02e23, 1e300, -2.5e-300, 0.0}) {
    EXPECT_EQ(std::strtod(json_text(d).c_str(), nullptr), d) << json_text(d);
    EXPECT_TRUE(bj::parse(json_text(d)).is_double()) << json_text(d);
  }
}

TEST(json_text, no_infinity_or_nan_reaches_the_text) {
  EXPECT_EQ(json_text(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(json_text(std::nan("")), "null");
}

TEST(json_text, nested_documents_match_boosts_writer_but_for_the_numbers) {
  bj::value v = {{"delay", 0.1},
                 {"name", "quote \" and \\ and \n and \x01"},
                 {"times", 3},
                 {"big", 18446744073709551615ull},
                 {"list", {1, 2.5, nullptr, true, "x"}},
                 {"nested", {{"seconds", 12.0}, {"empty", bj::object{}}, {"none", bj::array{}}}}};
  EXPECT_EQ(json_text(v), R"({"delay":0.1,"name":"quote \" and \\ and \n and \u0001","times":3,)"
                          R"("big":18446744073709551615,"list":[1,2.5,null,true,"x"],)"
                          R"("nested":{"seconds":12.0,"empty":{},"none":[]}})");
  EXPECT_EQ(bj::parse(json_text(v)), v);
  bj::value no_doubles = {{"a", 1}, {"b", {"c", nullptr}}};
  EXPECT_EQ(json_text(no_doubles), bj::serialize(no_doubles));
}

TEST(json_text, octets_that_are_not_utf8_become_the_replacement_character) {
  // A command's Latin-1 output ("caf\xE9"): copied as it was, the document is not JSON.
  bj::value v = {{"command_output", "caf\xE9\n"}, {"ok", "caf\xC3\xA9"}, {"list", {"\xFF"}}};
  EXPECT_EQ(json_text(v),
            "{\"command_output\":\"caf\xEF\xBF\xBD\\n\",\"ok\":\"caf\xC3\xA9\",\"list\":["
            "\"\xEF\xBF\xBD\"]}");
  EXPECT_NO_THROW(bj::parse(json_text(v)));
  bj::object key;
  key["\x80"] = 1;
  EXPECT_EQ(json_text(key), "{\"\xEF\xBF\xBD\":1}");
}

// A JSON log line shown in a terminal (tail -f) must not reorder or restyle it: the C1 and
// bidirectional controls go out as escapes, which every JSON reader reads back as they were.
TEST(json_text, c1_and_bidirectional_controls_are_escaped) {
  bj::value v = {{"text",
                  "EHLO a\xC2\x85"
                  "b\xE2\x80\xAE"
                  "c\xE2\x81\xA6"
                  "d\xC2\xA0"
                  "e\xFF"}};
  EXPECT_EQ(json_text(v),
            "{\"text\":\"EHLO a\\u0085b\\u202ec\\u2066d\xC2\xA0"
            "e\xEF\xBF\xBD\"}");
  EXPECT_EQ(bj::parse(json_text(v)).at("text").as_string(),
            "EHLO a\xC2\x85"
            "b\xE2\x80\xAE"
            "c\xE2\x81\xA6"
            "d\xC2\xA0"
            "e\xEF\xBF\xBD");
}

}  // namespace
}  // namespace smtpfault::json
