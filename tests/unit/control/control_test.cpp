// The pure parts of the HTTP API: rule and action JSON, fault rule matching, filters and
// header parsing, query and time parsing. The HTTP side is covered by tests/integration.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "control/message_json.hpp"
#include "control/request_reader.hpp"
#include "control/rule_json.hpp"
#include "net/fault_rules.hpp"
#include "proto/glob.hpp"

namespace smtpfault::control {
namespace {

namespace json = boost::json;

result<net::fault_rule> rule_from(std::string_view text) {
  auto o = parse_json_object(text);
  if (!o) return proto::unexpected{o.error()};
  return parse_rule(*o);
}

std::string field_of(std::string_view text) {
  auto r = rule_from(text);
  return r ? std::string("<accepted>") : r.error().field;
}

TEST(rule_json, full_action_maps_every_field) {
  auto r = rule_from(R"({"match": {"on": "rcpt", "address": "*@x.test", "client": "10.0.0.0/8"},
    "action": {"name": "n", "reply": {"code": 451, "enhanced": "4.7.1", "lines": ["a", "b"]},
               "delay": 1.5, "trickle": {"bytes": 2, "every": 0.25}, "split": [1, 3],
               "ending": "close_after", "hide": ["STARTTLS"], "malformed": "mixed_codes",
               "unsolicited": {"code": 421, "text": "idle", "after": 2}}, "times": 3})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->match.on, "RCPT");
  EXPECT_EQ(r->match.address, "*@x.test");
  EXPECT_EQ(r->match.client->to_string(), "10.0.0.0/8");
  EXPECT_EQ(r->times, 3u);
  const auto& a = r->action;
  EXPECT_EQ(a.reply->code, 451);
  EXPECT_EQ(a.reply->enhanced, "4.7.1");
  EXPECT_EQ(a.reply->lines, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(a.delay.count(), 1500);
  EXPECT_EQ(a.trickle_bytes, 2u);
  EXPECT_EQ(a.trickle_every.count(), 250);
  EXPECT_EQ(a.split_at, (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(a.end, fault::ending::close_after_reply);
  EXPECT_EQ(a.malformed, fault::malformed_kind::mixed_codes);
  EXPECT_EQ(a.hide, std::vector<std::string>{"STARTTLS"});
  ASSERT_TRUE(a.unsolicited);
  EXPECT_EQ(a.unsolicited->after.count(), 2000);
  EXPECT_TRUE(a.unsolicited->close);
}

TEST(rule_json, defaults_one_shot_any_command) {
  auto r = rule_from(R"({"action": {"ending": "reset"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->times, 1u);
  EXPECT_EQ(r->match.on, "*");
  EXPECT_EQ(r->action.end, fault::ending::reset);
  EXPECT_EQ(json::serialize(rule_json(*r)["action"]), R"({"ending":"reset"})");
}

// The rule comes back with the integers it was read as, for clients that decode them as such.
TEST(rule_json, whole_numbers_are_echoed_as_integers) {
  auto r = rule_from(
      R"({"action": {"reply": {"code": 451.0}, "trickle": {"bytes": 2e0, "every": 0.5}}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(json::serialize(rule_json(*r)["action"]),
            R"({"reply":{"code":451},"trickle":{"bytes":2,"every":5E-1}})");
}

TEST(rule_json, errors_name_the_field) {
  EXPECT_EQ(field_of(R"({"action": {"reply": {"code": 99}}})"), "action.reply.code");
  EXPECT_EQ(field_of(R"({"action": {"reply": {"text": "x"}}})"), "action.reply.code");
  EXPECT_EQ(field_of(R"({"action": {"reply": {"code": 250, "text": "a\r\nb"}}})"),
            "action.reply.text");
  EXPECT_EQ(field_of(R"({"action": {"reply": {"code": 250, "text": "a\u0000b"}}})"),
            "action.reply.text");
  EXPECT_EQ(field_of(R"({"action": {"reply": {"code": 250, "lines": ["a", "\u0000"]}}})"),
            "action.reply.lines");
  EXPECT_EQ(field_of(R"({"action": {"reply": {"code": 250, "text": "a", "lines": ["b"]}}})"),
            "action.reply.lines");
  EXPECT_EQ(field_of(R"({"action": {"trickle": {"every": 1}}})"), "action.trickle.bytes");
  EXPECT_EQ(field_of(R"({"action": {"split": [1, -2]}})"), "action.split[1]");
  EXPECT_EQ(field_of(R"({"action": {"starttls": "maybe"}})"), "action.starttls");
  EXPECT_EQ(field_of(R"({"action": {"hide": ["VRFY", "EXPN"]}})"), "action.hide");
  EXPECT_TRUE(rule_from(R"({"action": {"hide": ["vrfy", "HELP", "auth"]}})"));
  EXPECT_EQ(field_of(R"({"action": {"delay": 1}, "match": {"client": "1.2.3.4/33"}})"),
            "match.client");
  EXPECT_EQ(field_of(R"({"action": {"delay": 1}, "extra": 1})"), "extra");
  EXPECT_EQ(field_of(R"({"action": {"name": "only a name"}})"), "action");
  EXPECT_EQ(field_of(R"({"action": {"delay": 1}, "times": 1.5})"), "times");
  EXPECT_EQ(field_of(R"({"action": {"unsolicited": {"code": 421, "close": false}}})"),
            "action.unsolicited.close");
  EXPECT_TRUE(rule_from(R"({"action": {"unsolicited": {"code": 220, "close": false}}})"));
  EXPECT_FALSE(parse_json_object("[1]"));
  EXPECT_FALSE(parse_json_object("{\"a\": "));
}

TEST(glob, wildcards_and_case) {
  EXPECT_TRUE(proto::glob_match("*@X.test", "bob@x.TEST"));
  EXPECT_TRUE(proto::glob_match("b?b@*", "bob@x"));
  EXPECT_TRUE(proto::glob_match("*", ""));
  EXPECT_FALSE(proto::glob_match("?", ""));
  EXPECT_FALSE(proto::glob_match("a*b", "acbd"));
  EXPECT_TRUE(proto::glob_match("a*b*c", "aXbYbZc"));
  EXPECT_TRUE(proto::glob_match("exact@x", "exact@x"));
  // A '*' in the pattern is a wildcard even where the text has a '*' too.
  EXPECT_TRUE(proto::glob_match("a*", "a*b"));
  // SMTPUTF8: '?' is one character, however many octets it takes; '*' ends between characters.
  EXPECT_TRUE(proto::glob_match("zo?@example.com", "zo\xC3\xAB@example.com"));
  EXPECT_FALSE(proto::glob_match("zo??@example.com", "zo\xC3\xAB@example.com"));
  EXPECT_TRUE(proto::glob_match("*?@x", "\xE2\x82\xAC\xE2\x82\xAC@x"));
  EXPECT_TRUE(proto::glob_match("*\xC3\xAB@x", "zo\xC3\xAB@x"));
  // Many stars against a long non-matching text stays fast (no exponential backtracking).
  EXPECT_FALSE(proto::glob_match(std::string(30, '*') + "b", std::string(10000, 'a')));
}

TEST(ip_network, v4_v6_and_prefixes) {
  auto n = net::ip_network::parse("192.168.0.0/16");
  ASSERT_TRUE(n);
  auto a = [](const char* s) { return boost::asio::ip::make_address(s); };
  EXPECT_TRUE(n->contains(a("192.168.4.5")));
  EXPECT_FALSE(n->contains(a("192.169.0.1")));
  EXPECT_FALSE(n->contains(a("::1")));
  auto one = net::ip_network::parse("::1");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains(a("::1")));
  EXPECT_EQ(one->prefix, 128u);
  EXPECT_TRUE(net::ip_network::parse("10.1.2.3/0")->contains(a("8.8.8.8")));
  EXPECT_TRUE(net::ip_network::parse("10.0.0.0/9")->contains(a("10.127.0.1")));
  EXPECT_FALSE(net::ip_network::parse("10.0.0.0/9")->contains(a("10.128.0.1")));
  EXPECT_FALSE(net::ip_network::parse("10.0.0.0/"));
  EXPECT_FALSE(net::ip_network::parse("host.example"));
}

TEST(fault_rules, first_match_counts_and_expiry) {
  net::fault_rules rules;
  EXPECT_TRUE(rules.empty());
  net::fault_rule twice;
  twice.match.on = "RCPT";
  twice.match.address = "*@slow.test";
  twice.action.reply = proto::reply(451, "4.7.1", "later");
  twice.times = 2;
  net::fault_rule forever;
  forever.match.on = "*";
  forever.action.delay = fault::millis(5);
  forever.times = 0;
  rules.add(twice);
  rules.add(forever);

  proto::command rcpt;
  rcpt.kind = proto::verb::rcpt;
  rcpt.verb_text = "rcpt";
  rcpt.path.local_part = "a";
  rcpt.path.domain = "slow.test";
  net::rule_context c;
  c.command = &rcpt;
  c.client_address = "127.0.0.1:4000";
  EXPECT_EQ(rules.take(c)->reply->code, 451);
  EXPECT_EQ(rules.take(c)->reply->code, 451);
  auto third = rules.take(c);  // the two-shot rule is gone: the catch-all matches now
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->reply);
  EXPECT_EQ(rules.list().size(), 1u);
  EXPECT_EQ(rules.list()[0].fired, 1u);

  c.phase = session::hook::connect;  // "*" is any command, not the greeting
  EXPECT_FALSE(rules.take(c));
  rules.clear();
  EXPECT_TRUE(rules.empty());
}

TEST(fault_rules, client_network_and_message_phase) {
  net::fault_rules rules;
  net::fault_rule r;
  r.match.on = "message";
  r.match.address = "b@*";
  r.match.client = *net::ip_network::parse("::1");
  r.action.end = fault::ending::close_without_reply;
  r.times = 0;
  rules.add(r);
  session::envelope env;
  env.recipients.push_back({proto::mailbox{"a", "x", false}, {}});
  env.recipients.push_back({proto::mailbox{"b", "y", false}, {}});
  net::rule_context c;
  c.phase = session::hook::message;
  c.envelope = &env;
  c.client_address = "127.0.0.1:1";
  EXPECT_FALSE(rules.take(c));
  c.client_address = "[::1]:2525";
  EXPECT_TRUE(rules.take(c));
  env.recipients.pop_back();
  EXPECT_FALSE(rules.take(c));
}

// Bounces and DSNs come from the null sender, which only "<>" names.
TEST(fault_rules, the_null_sender_is_matched_by_angle_brackets) {
  auto r =
      rule_from(R"({"match": {"on": "MAIL", "address": "<>"}, "action": {"ending": "reset"}})");
  ASSERT_TRUE(r) << r.error().message;
  net::fault_rules rules;
  rules.add(*r);
  proto::command mail;
  mail.kind = proto::verb::mail;
  mail.verb_text = "MAIL";
  net::rule_context c;
  c.command = &mail;
  c.client_address = "127.0.0.1:4000";
  mail.path.local_part = "a";
  mail.path.domain = "x.test";
  EXPECT_FALSE(rules.take(c));
  mail.path = {};
  EXPECT_TRUE(rules.take(c));
  EXPECT_EQ(field_of(R"({"match": {"on": "RCPT", "address": "<>"}, "action": {}})"),
            "match.address");
  EXPECT_EQ(field_of(R"({"match": {"on": "RCPT", "address": "<b@x.test>"}, "action": {}})"),
            "match.address");
}

// IPv4 clients are compared as IPv4, so an IPv4-mapped network is taken as the IPv4 one.
TEST(fault_rules, an_ipv4_mapped_network_matches_ipv4_clients) {
  auto a = [](const char* s) { return boost::asio::ip::make_address(s); };
  auto one = net::ip_network::parse("::ffff:127.0.0.1");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains(a("127.0.0.1")));
  EXPECT_EQ(one->to_string(), "127.0.0.1/32");
  EXPECT_TRUE(net::ip_network::parse("::ffff:10.0.0.0/104")->contains(a("10.9.9.9")));
  EXPECT_FALSE(net::ip_network::parse("::ffff:10.0.0.0/104")->contains(a("11.0.0.1")));
  EXPECT_FALSE(net::ip_network::parse("::ffff:0.0.0.0/95"));
}

TEST(headers, unfolding_and_lookup) {
  auto h = parse_headers(
      "Subject: hello\r\n  world\r\nX-Smtpfault-Test:  t-1 \r\nnot a header\r\n\r\nSubject: "
      "body\r\n");
  ASSERT_EQ(h.size(), 2u);
  // RFC 5322 2.2.3: unfolding takes out the line break, not the whitespace after it.
  EXPECT_EQ(header_value(h, "subject"), "hello  world");
  EXPECT_EQ(header_value(parse_headers("Subject: a\r\n\tb   c\r\n"), "Subject"), "a\tb   c");
  EXPECT_EQ(header_value(parse_headers("Subject:\r\n folded\r\n"), "Subject"), "folded");
  EXPECT_EQ(header_value(h, "X-SMTPFAULT-TEST"), "t-1");
  EXPECT_FALSE(header_value(h, "From"));
  EXPECT_EQ(parse_headers("A: 1\nB: 2\n\nC: 3").size(), 2u);
  EXPECT_EQ(parse_headers(std::string(5000, 'x') + ": v\r\n", 3).size(), 1u);
  std::string many;
  for (int i = 0; i < 50; ++i)
    many += "H: v\r\n";
  EXPECT_EQ(parse_headers(many, 10).size(), 10u);
}

TEST(time, iso_and_epoch) {
  using namespace std::chrono;
  auto t = parse_time("2026-01-31T12:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(duration_cast<seconds>(t->time_since_epoch()).count(), 1769860800);
  auto frac = parse_time("2026-01-31T12:00:00.250+01:00");
  ASSERT_TRUE(frac);
  EXPECT_EQ(duration_cast<milliseconds>(*frac - *t).count(), -3600 * 1000 + 250);
  EXPECT_EQ(duration_cast<milliseconds>(parse_time("1.5")->time_since_epoch()).count(), 1500);
  EXPECT_EQ(parse_time("2999-01-01T00:00:00Z"), system_clock::time_point::max());
  EXPECT_FALSE(parse_time("yesterday"));
  // Offsets with or without their colon, or in hours; seconds may be left out.
  for (const char* same : {"2026-01-31T13:00:00+0100", "2026-01-31T13:00:00+01",
                           "2026-01-31T13:00+01:00", "2026-01-31T12:00Z", "2026-01-31T12:00"})
    EXPECT_EQ(parse_time(same), t) << same;
  for (const char* bad : {"20260131T120000Z", "2026-01-31T12:00:Z", "2026-01-31T12:00:00+1",
                          "2026-01-31T12:00:00+01:0", "2026-01-31T12:00:00+0a00", "2026-01-31T12Z",
                          "2026-01-31T12:00:00+01:00:00"})
    EXPECT_FALSE(parse_time(bad)) << bad;
  // A calendar date is its midnight, UTC.
  EXPECT_EQ(parse_time("2026-01-31"), parse_time("2026-01-31T00:00:00Z"));
  EXPECT_FALSE(parse_time("2026-1-31"));
  EXPECT_FALSE(parse_time(" 2026-01-1"));
  EXPECT_FALSE(parse_time("+026-01-01"));
  EXPECT_FALSE(parse_time("2026-01-32"));
  EXPECT_FALSE(parse_time("2026-01-31T12:00:00 junk"));
  EXPECT_FALSE(parse_time("-5"));
  // Out-of-range fields are a mistake, not a date to roll over.
  for (const char* bad :
       {"2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-45T00:00:00Z",
        "2026-01-01T24:00:00Z", "2026-01-01T00:61:00Z", "2026-01-01T00:00:00+25:00"})
    EXPECT_FALSE(parse_time(bad)) << bad;
  EXPECT_TRUE(parse_time("2024-02-29T23:59:60Z"));
  // February 29th only in a leap year (2000 was one, 2100 will not be).
  EXPECT_FALSE(parse_time("2026-02-29"));
  EXPECT_FALSE(parse_time("2100-02-29"));
  EXPECT_TRUE(parse_time("2000-02-29"));
  // "inf" and "nan" read as numbers, but are no time.
  EXPECT_FALSE(parse_time("inf"));
  EXPECT_FALSE(parse_time("nan"));
  // The second whose time_t is -1 (timegm's error value) is a time like any other.
  EXPECT_EQ(duration_cast<seconds>(parse_time("1969-12-31T23:59:59Z")->time_since_epoch()).count(),
            -1);
}

// Wire data in a reply (a HELO name in a session) is served as UTF-8.
TEST(utf8, a_json_reply_has_invalid_octets_as_replacement_characters) {
  const auto r = json_response(200, json::object{{"k\xFF", json::array{"\xE2\x82", "\xC0\xAF"}}});
  EXPECT_EQ(r.body(),
            "{\"k\xEF\xBF\xBD\":[\"\xEF\xBF\xBD\xEF\xBF\xBD\",\"\xEF\xBF\xBD\xEF\xBF\xBD\"]}\n");
  EXPECT_EQ(error_response({400, "bad \xED\xA0\x80", "f\xFF"}).body(),
            "{\"error\":\"bad "
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\",\"status\":400,\"field\":\"f\xEF\xBF\xBD\"}\n");
}

}  // namespace
}  // namespace smtpfault::control
