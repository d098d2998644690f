// The helper library (SPEC 4: "matchers, counters, nth/once/chance helpers") and smtp.ip_in for
// "relay denial by domain/IP".
#include <gtest/gtest.h>

#include <string>

#include "harness.hpp"

namespace smtpfault::script::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A list of values computed in one hook call, joined with spaces.
std::string series(const std::string& exprs, const std::string& prelude = "") {
  return eval("table.concat({" + exprs + "}, ' ')", prelude);
}

// As math.random(0): an integer over the whole range, not "interval is empty".
TEST(helpers, random_zero_gives_any_integer) {
  EXPECT_EQ(eval("math.type(smtp.random(0))"), "integer");
  // The top bit is random too: 64 draws of one sign would happen once in 2^63.
  EXPECT_EQ(eval("(function() local neg, pos = false, false for i = 1, 64 do local v = "
                 "smtp.random(0) if v < 0 then neg = true else pos = true end end return neg and "
                 "pos end)()"),
            "true");
}

// The whole integer range (and any span past a double's precision): no overflow, every value
// inside it, and both halves of it reached.
TEST(helpers, random_over_the_whole_integer_range) {
  EXPECT_EQ(eval("(function() local neg, pos = false, false for i = 1, 64 do local v = "
                 "smtp.random(math.mininteger, math.maxinteger) if math.type(v) ~= 'integer' "
                 "then return 'not an integer' end if v < 0 then neg = true else pos = true end "
                 "end return neg and pos end)()"),
            "true");
  EXPECT_EQ(eval("(function() for i = 1, 64 do local v = smtp.random(-2^62, 2^62) if v < -2^62 "
                 "or v > 2^62 then return v end end return 'inside' end)()"),
            "inside");
  EXPECT_EQ(eval("smtp.random(math.maxinteger, math.maxinteger) == math.maxinteger"), "true");
}

TEST(helpers, count_counts_per_key) {
  EXPECT_EQ(series("smtp.count('a'), smtp.count('a'), smtp.count('b'), smtp.count(), smtp.count(), "
                   "smtp.count(7), smtp.count('7')"),
            "1 2 1 1 2 1 2");
}

TEST(helpers, count_is_scenario_wide) {
  driver d("function on_connect(s) return smtp.reply(250, tostring(smtp.count('c'))) end\n");
  EXPECT_EQ(d.start(hook::connect).action.reply->lines.at(0), "1");
  d.open_session();
  EXPECT_EQ(d.start(hook::connect).action.reply->lines.at(0), "2");
}

TEST(helpers, nth_is_true_exactly_once) {
  EXPECT_EQ(series("tostring(smtp.nth(3, 'k')), tostring(smtp.nth(3, 'k')), "
                   "tostring(smtp.nth(3, 'k')), tostring(smtp.nth(3, 'k')), tostring(smtp.nth(1))"),
            "false false true false true");
}

TEST(helpers, once_is_true_the_first_time_per_key) {
  EXPECT_EQ(series("tostring(smtp.once('k')), tostring(smtp.once('k')), tostring(smtp.once('j')), "
                   "tostring(smtp.once()), tostring(smtp.once())"),
            "true false true true false");
}

TEST(helpers, every_is_true_on_each_nth_call) {
  EXPECT_EQ(series("tostring(smtp.every(2, 'k')), tostring(smtp.every(2, 'k')), "
                   "tostring(smtp.every(2, 'k')), tostring(smtp.every(2, 'k')), "
                   "tostring(smtp.every(1))"),
            "false true false true true");
}

TEST(helpers, helper_keys_do_not_collide) {
  // nth, once and every keep their own counters, apart from smtp.count.
  EXPECT_EQ(series("tostring(smtp.once('x')), tostring(smtp.nth(1, 'x')), smtp.count('x')"),
            "true true 1");
}

TEST(helpers, domain_and_local_part) {
  EXPECT_EQ(eval("smtp.domain('User@Example.COM')"), "example.com");
  EXPECT_EQ(eval("smtp.domain('no-domain')"), "");
  EXPECT_EQ(eval("smtp.domain('\"a@b\"@x.test')"), "x.test");
  EXPECT_EQ(eval("smtp.local_part('First.Last@x.test')"), "First.Last");
  // As the path appears in a command line (cmd.argument): the brackets are not the address.
  EXPECT_EQ(eval("smtp.domain('<a@B.example>')"), "b.example");
  EXPECT_EQ(eval("smtp.local_part('<a@B.example>')"), "a");
  EXPECT_EQ(eval("smtp.local_part('\"a@b\"@x.test')"), "\"a@b\"");
  EXPECT_EQ(eval("smtp.local_part('postmaster')"), "postmaster");
}

TEST(helpers, domain_in_matches_domains_and_subdomains_ignoring_case) {
  EXPECT_EQ(eval("smtp.domain_in('a@example.com', 'example.com')"), "true");
  EXPECT_EQ(eval("smtp.domain_in('a@Mail.EXAMPLE.com', {'other.test', 'example.com'})"), "true");
  EXPECT_EQ(eval("smtp.domain_in('a@example.com', {'EXAMPLE.COM'})"), "true");
  EXPECT_EQ(eval("smtp.domain_in('Example.com', 'example.com')"), "true");
  EXPECT_EQ(eval("smtp.domain_in('sub.example.com', 'example.com')"), "true");
  EXPECT_EQ(eval("smtp.domain_in('a@notexample.com', 'example.com')"), "false");
  EXPECT_EQ(eval("smtp.domain_in('a@example.com.evil.test', 'example.com')"), "false");
  EXPECT_EQ(eval("smtp.domain_in('a@example.com', {})"), "false");
  EXPECT_THAT(eval("smtp.domain_in('a@example.com', 5)"),
              HasSubstr("bad argument #2 to smtp.domain_in (table expected, got number)"));
}

TEST(helpers, matches_is_a_case_insensitive_glob) {
  EXPECT_EQ(eval("smtp.matches('alice@example.com', '*@example.com')"), "true");
  EXPECT_EQ(eval("smtp.matches('ALICE@Example.com', 'alice@*')"), "true");
  EXPECT_EQ(eval("smtp.matches('alice@example.com', 'a?ice@*.com')"), "true");
  EXPECT_EQ(eval("smtp.matches('alice@example.org', '*@example.com')"), "false");
  EXPECT_EQ(eval("smtp.matches('xalice@example.com', 'alice@*')"), "false");
  // Lua pattern characters are literal in a glob.
  EXPECT_EQ(eval("smtp.matches('a+b@x.test', 'a+b@x.test')"), "true");
  EXPECT_EQ(eval("smtp.matches('axb@x.test', 'a.b@x.test')"), "false");
  EXPECT_EQ(eval("smtp.matches('100%@x.test', '100%@*')"), "true");
  EXPECT_EQ(eval("smtp.matches('a*b@x.test', 'a*')"), "true");
  // SMTPUTF8: '?' is one character, however many octets it takes.
  EXPECT_EQ(eval("smtp.matches('zo\\xC3\\xAB@example.com', 'zo?@example.com')"), "true");
  EXPECT_EQ(eval("smtp.matches('zo\\xC3\\xAB@example.com', 'zo??@example.com')"), "false");
  EXPECT_EQ(eval("smtp.matches('\\xE2\\x82\\xAC\\xE2\\x82\\xAC@x', '*?@x')"), "true");
  EXPECT_EQ(eval("smtp.matches('[a]@x.test', '[a]@*')"), "true");
  EXPECT_EQ(eval("smtp.matches('', '*')"), "true");
  EXPECT_EQ(eval("smtp.matches('', '?')"), "false");
  EXPECT_EQ(eval("smtp.matches('abc', 'a**c')"), "true");
  EXPECT_EQ(eval("smtp.matches('abcbd', '*b?')"), "true");
  EXPECT_EQ(eval("smtp.matches('mississippi@x', 'm*iss*ppi@?')"), "true");
  EXPECT_EQ(eval("smtp.matches('ab', 'ab*c')"), "false");
  // Many stars against a near miss: a backtracking matcher took seconds here (exponential in
  // the stars, inside C where the instruction limit cannot stop it); a glob walk is quick.
  EXPECT_EQ(eval("smtp.matches(string.rep('a', 200), string.rep('*a', 100) .. 'b')"), "false");
}

TEST(helpers, ip_in_ipv4_cidr) {
  EXPECT_EQ(eval("smtp.ip_in('10.1.2.3', '10.0.0.0/8')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('11.0.0.1', '10.0.0.0/8')"), "false");
  EXPECT_EQ(eval("smtp.ip_in('192.168.1.200', '192.168.1.128/25')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('192.168.1.100', '192.168.1.128/25')"), "false");
  EXPECT_EQ(eval("smtp.ip_in('127.0.0.1', '127.0.0.1')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('127.0.0.2', '127.0.0.1')"), "false");
  EXPECT_EQ(eval("smtp.ip_in('8.8.8.8', '0.0.0.0/0')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('192.168.1.5', {'10.0.0.0/8', '192.168.0.0/16'})"), "true");
  EXPECT_EQ(eval("smtp.ip_in('172.16.0.1', {'10.0.0.0/8', '192.168.0.0/16'})"), "false");
  EXPECT_EQ(eval("smtp.ip_in('1.2.3.4', {})"), "false");
}

TEST(helpers, ip_in_ipv6) {
  EXPECT_EQ(eval("smtp.ip_in('::1', '::1')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('2001:db8::5', '2001:db8::/32')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('2001:db9::1', '2001:db8::/32')"), "false");
  EXPECT_EQ(eval("smtp.ip_in('fe80::1', 'fe80::/10')"), "true");
  // Families never match each other.
  EXPECT_EQ(eval("smtp.ip_in('::1', '0.0.0.0/0')"), "false");
  EXPECT_EQ(eval("smtp.ip_in('10.0.0.1', '::/0')"), "false");
}

TEST(helpers, ip_in_treats_v4_mapped_addresses_as_ipv4) {
  EXPECT_EQ(eval("smtp.ip_in('::ffff:10.0.0.1', '10.0.0.0/8')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('::ffff:11.0.0.1', '10.0.0.0/8')"), "false");
  EXPECT_EQ(eval("smtp.ip_in('10.0.0.1', '::ffff:10.0.0.0/104')"), "true");
  EXPECT_EQ(eval("smtp.ip_in('10.0.0.1', '::ffff:10.0.0.1')"), "true");
}

TEST(helpers, ip_in_rejects_bad_networks) {
  for (const char* net : {"10.0.0.0/33", "banana", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1",
                          "::/129", "10.0.0/8", ""}) {
    EXPECT_THAT(eval(std::string("smtp.ip_in('10.0.0.1', '") + net + "')"),
                AllOf(StartsWith("error: test.lua:"), HasSubstr("is not an address or CIDR")))
        << net;
  }
  EXPECT_THAT(eval("smtp.ip_in('10.0.0.1', 8)"), StartsWith("error: test.lua:"));
  EXPECT_THAT(eval("smtp.ip_in('10.0.0.1', {'10.0.0.0/8', {}})"), StartsWith("error: test.lua:"));
}

TEST(helpers, chance_takes_a_probability) {
  EXPECT_EQ(eval("smtp.chance(0)"), "false");
  EXPECT_EQ(eval("smtp.chance(1)"), "true");
  for (const char* p : {"1.5", "-0.1", "0/0", "50"}) {
    EXPECT_THAT(eval(std::string("smtp.chance(") + p + ")"),
                HasSubstr("bad argument #1 to smtp.chance (a probability from 0 to 1)"))
        << p;
  }
}

// A silent false would make every client an outsider in a relay rule.
TEST(helpers, ip_in_with_something_that_is_not_an_address_is_a_mistake) {
  EXPECT_THAT(eval("smtp.ip_in('localhost', '127.0.0.0/8')"),
              AllOf(StartsWith("error: test.lua:"),
                    HasSubstr("bad argument #1 to smtp.ip_in ('localhost' is not an IP address)")));
  EXPECT_THAT(eval("smtp.ip_in('', '0.0.0.0/0')"), HasSubstr("('' is not an IP address)"));
  EXPECT_THAT(eval("smtp.ip_in('127.0.0.1:40000', '127.0.0.0/8')"),
              HasSubstr("('127.0.0.1:40000' is not an IP address; s.client has the port too, "
                        "s.client_ip is the address)"));
}

TEST(helpers, ip_in_uses_the_client_address_of_the_session) {
  driver d(
      "function on_connect(s)\n"
      "  if smtp.ip_in(s.client_ip, '127.0.0.0/8') then return smtp.reply(554) end\n"
      "end\n");
  EXPECT_EQ(d.start(hook::connect).action.reply->code, 554);
  d.open_session("[2001:db8::1]:40000");
  EXPECT_TRUE(d.start(hook::connect).action.is_default());
}

}  // namespace
}  // namespace smtpfault::script::testing
