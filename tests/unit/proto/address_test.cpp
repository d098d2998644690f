#include "proto/address.hpp"

#include <gtest/gtest.h>

#include <string>

namespace smtpfault::proto {
namespace {

using namespace std::string_literals;

const limits path_limits{};

mailbox valid_path(std::string_view text, bool postmaster = false, const limits& l = path_limits) {
  auto r = parse_path(text, l, postmaster);
  EXPECT_TRUE(r) << text;
  return r ? *r : mailbox{};
}

path_error invalid_path(std::string_view text, bool postmaster = false,
                        const limits& l = path_limits) {
  auto r = parse_path(text, l, postmaster);
  EXPECT_FALSE(r) << text;
  return r ? path_error::syntax : r.error();
}

TEST(address, plain_mailbox) {
  auto m = valid_path("<alice@example.org>");
  EXPECT_EQ(m.local_part, "alice");
  EXPECT_EQ(m.domain, "example.org");
  EXPECT_FALSE(m.is_null);
  EXPECT_FALSE(m.has_utf8);
  EXPECT_EQ(m.address(), "alice@example.org");
}

TEST(address, null_path) {
  auto m = valid_path("<>");
  EXPECT_TRUE(m.is_null);
  EXPECT_EQ(m.address(), "");
}

// address_is answers as comparing with address() would, for every shape of mailbox.
TEST(address, address_is_compares_without_building) {
  for (const char* path : {"<alice@example.org>", "<>", "<Postmaster>", "<\"a@b\"@x.example>"}) {
    const auto m = valid_path(path, true);
    EXPECT_TRUE(m.address_is(m.address())) << path;
    for (const char* other : {"", "alice@example.or", "alice@example.orgx", "alicexexample.org",
                              "Postmaster@", "@example.org", "bob@example.org"}) {
      EXPECT_EQ(m.address_is(other), m.address() == other) << path << " " << other;
    }
  }
}

TEST(address, atext_and_dots) {
  EXPECT_EQ(valid_path("<first.last+tag@example.org>").local_part, "first.last+tag");
  EXPECT_EQ(valid_path("<!#$%&'*+-/=?^_`{|}~@x.example>").local_part, "!#$%&'*+-/=?^_`{|}~");
  for (const char* t : {"<.a@x.example>", "<a.@x.example>", "<a..b@x.example>", "<a b@x.example>",
                        "<a(b)@x.example>", "<a,b@x.example>", "<a\"b@x.example>"}) {
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
}

TEST(address, quoted_local_part) {
  EXPECT_EQ(valid_path("<\"john smith\"@example.org>").local_part, "\"john smith\"");
  EXPECT_EQ(valid_path("<\"a\\\"b\\\\c\"@example.org>").local_part, "\"a\\\"b\\\\c\"");
  EXPECT_EQ(valid_path("<\"@\"@example.org>").address(), "\"@\"@example.org");
  for (const char* t :
       {"<\"unterminated@example.org>", "<\"a\"b@example.org>", "<\"a\\\"@example.org>"}) {
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
  EXPECT_EQ(invalid_path("<\"tab\there\"@example.org>"), path_error::syntax);
}

TEST(address, brackets_are_required) {
  for (const char* t : {"alice@example.org", "<alice@example.org", "alice@example.org>", "<", ""}) {
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
}

TEST(address, missing_parts) {
  for (const char* t : {"<alice>", "<@example.org>", "<alice@>", "<alice@@example.org>"}) {
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
}

TEST(address, domain_labels) {
  EXPECT_EQ(valid_path("<a@mx-1.EXAMPLE.org>").domain, "mx-1.EXAMPLE.org");
  EXPECT_EQ(valid_path("<a@localhost>").domain, "localhost");
  for (const char* t : {"<a@-x.example>", "<a@x-.example>", "<a@x..example>", "<a@.example>",
                        "<a@example.>", "<a@ex_ample.org>", "<a@exa mple.org>"}) {
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
  // RFC 1035 2.3.4: 63 octets at most in a label.
  EXPECT_EQ(valid_path("<a@" + std::string(63, 'b') + ".com>").local_part, "a");
  EXPECT_EQ(invalid_path("<a@" + std::string(64, 'b') + ".com>"), path_error::syntax);
}

TEST(address, address_literals) {
  EXPECT_EQ(valid_path("<a@[192.0.2.1]>").domain, "[192.0.2.1]");
  EXPECT_EQ(valid_path("<a@[IPv6:2001:db8::1]>").domain, "[IPv6:2001:db8::1]");
  EXPECT_EQ(valid_path("<a@[ipv6:::ffff:192.0.2.1]>").domain, "[ipv6:::ffff:192.0.2.1]");
  EXPECT_EQ(valid_path("<a@[x-tag:opaque]>").domain, "[x-tag:opaque]");
  EXPECT_EQ(valid_path("<a@[IPv6:1:2:3:4:5:6:7:8]>").domain, "[IPv6:1:2:3:4:5:6:7:8]");
  for (const char* t :
       {"<a@[256.0.0.1]>", "<a@[1.2.3]>", "<a@[1.2.3.4.5]>", "<a@[]>", "<a@[IPv6:zz::1]>",
        "<a@[IPv6:1]>", "<a@[1.2.3.4>", "<a@[1.2.3.4]x>", "<a@[1.2.3.04444]>",
        // Two "::", nine groups, a group of five digits, a bad IPv4 tail.
        "<a@[IPv6:1::2::3]>", "<a@[IPv6:1:2:3:4:5:6:7:8:9]>", "<a@[IPv6:12345::1]>",
        "<a@[IPv6:::ffff:1.2.3.256]>"}) {
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
}

// RFC 6531: UTF-8 in either part needs SMTPUTF8.
TEST(address, utf8_is_flagged) {
  auto local = valid_path("<j\xc3\xb6rg@example.org>");
  EXPECT_TRUE(local.has_utf8);
  auto domain = valid_path("<a@b\xc3\xbc\x63her.example>");
  EXPECT_TRUE(domain.has_utf8);
  EXPECT_TRUE(valid_path("<\"\xe2\x82\xac\"@example.org>").has_utf8);
}

// RFC 6532 3.1: the non-ASCII octets are UTF-8 as RFC 3629 defines it; anything else is not an
// address (and would end up in the .json metadata as invalid UTF-8).
TEST(address, ill_formed_utf8_is_rejected) {
  for (const char* t : {"<\xff\xfe@example.org>",            // never valid octets
                        "<\xc3(@example.org>",               // truncated sequence
                        "<a@\xed\xa0\x80.example>",          // UTF-16 surrogate
                        "<\xc0\xaf@example.org>",            // overlong "/"
                        "<\xf8\x88\x80\x80\x80@x.example>",  // 5-octet form
                        "<\x80@example.org>",                // stray continuation octet
                        "<\"\xe2\x82\"@example.org>",        // truncated inside quotes
                        "<a@\xf4\x90\x80\x80.example>"}) {   // above U+10FFFF
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
  EXPECT_TRUE(valid_path("<\xf0\x9f\x93\xa7@\xe4\xbe\x8b.example>").has_utf8);
}

// RFC 5321 4.1.2: "<@a,@b:user@d>" source routes "MUST BE accepted" and "SHOULD be ignored".
TEST(address, source_route_is_dropped) {
  auto m = valid_path("<@relay1.example,@relay2.example:user@dest.example>");
  EXPECT_EQ(m.address(), "user@dest.example");
  for (const char* t :
       {"<@relay.example user@d.example>", "<@:user@d.example>", "<@relay.example,:user@d.example>",
        "<@relay.example,relay2:u@d.example>"}) {
    EXPECT_EQ(invalid_path(t), path_error::syntax) << t;
  }
}

TEST(address, postmaster_only_when_allowed) {
  auto m = valid_path("<Postmaster>", true);
  EXPECT_EQ(m.local_part, "Postmaster");
  EXPECT_EQ(m.domain, "");
  EXPECT_EQ(m.address(), "Postmaster");
  EXPECT_EQ(valid_path("<POSTMASTER>", true).address(), "POSTMASTER");
  EXPECT_EQ(invalid_path("<Postmaster>", false), path_error::syntax);
  EXPECT_EQ(valid_path("<postmaster@example.org>").domain, "example.org");
}

TEST(address, binary_octets_are_rejected) {
  EXPECT_EQ(invalid_path("<a\0b@example.org>"s), path_error::syntax);
  EXPECT_EQ(invalid_path("<a@exa\0mple.org>"s), path_error::syntax);
  EXPECT_EQ(invalid_path("<a\r\n@example.org>"), path_error::syntax);
}

// RFC 5321 4.5.3.1.1: "The maximum total length of a user name or other local-part is 64
// octets."
TEST(address, local_part_64_and_65) {
  EXPECT_EQ(valid_path("<" + std::string(64, 'l') + "@example.org>").local_part.size(), 64u);
  EXPECT_EQ(invalid_path("<" + std::string(65, 'l') + "@example.org>"), path_error::local_too_long);
  // A quoted local part counts with its quotes.
  EXPECT_EQ(invalid_path("<\"" + std::string(63, 'l') + "\"@example.org>"),
            path_error::local_too_long);
}

std::string domain_of(std::size_t n) {
  std::string d;
  while (d.size() < n)
    d += d.empty() ? "a" : (d.size() % 50 == 49 ? "." : "b");
  if (d.back() == '.') d.back() = 'c';
  return d;
}

// RFC 5321 4.5.3.1.2: "The maximum total length of a domain name or number is 255 octets."
TEST(address, domain_255_and_256) {
  limits wide = path_limits;
  wide.path = 1000;  // 255 octets of domain cannot fit in a 256-octet path with any local part
  EXPECT_EQ(valid_path("<a@" + domain_of(255) + ">", false, wide).domain.size(), 255u);
  EXPECT_EQ(invalid_path("<a@" + domain_of(256) + ">", false, wide), path_error::domain_too_long);
}

// RFC 5321 4.5.3.1.3: "The maximum total length of a reverse-path or forward-path is 256
// octets (including the punctuation and element separators)."
TEST(address, path_256_and_257) {
  std::string local(64, 'l');
  std::string at256 = "<" + local + "@" + domain_of(256 - 67) + ">";
  ASSERT_EQ(at256.size(), 256u);
  EXPECT_TRUE(parse_path(at256, path_limits));
  std::string at257 = "<" + local + "@" + domain_of(257 - 67) + ">";
  ASSERT_EQ(at257.size(), 257u);
  EXPECT_EQ(invalid_path(at257), path_error::path_too_long);
}

TEST(address, source_route_counts_towards_path_length) {
  std::string route = "<@" + domain_of(200) + ":";
  EXPECT_EQ(invalid_path(route + std::string(10, 'a') + "@" + domain_of(50) + ">"),
            path_error::path_too_long);
}

TEST(address, describe_every_error) {
  for (auto e : {path_error::syntax, path_error::local_too_long, path_error::domain_too_long,
                 path_error::path_too_long}) {
    EXPECT_STRNE(describe(e), "");
  }
}

}  // namespace
}  // namespace smtpfault::proto
