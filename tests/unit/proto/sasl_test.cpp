#include "proto/sasl.hpp"

#include <gtest/gtest.h>

#include <string>

#include "proto/md5.hpp"

namespace smtpfault::proto {
namespace {

using namespace std::string_literals;

std::string hex(const md5_digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

// RFC 4648 section 10 test vectors.
TEST(base64, rfc4648_vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
  }
}

TEST(base64, round_trips_every_octet) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
  }
}

// RFC 4954 section 4: "=" is a zero-length initial response.
TEST(base64, lone_equals_is_empty) {
  EXPECT_EQ(base64_decode("="), "");
}

TEST(base64, strict_rejections) {
  for (const char* t : {"Zg", "Zg=", "Zm9", "Zg==Zg==", "Z===", "====", "Zm9v\r\n", "Zm 9v",
                        "Zm9v=", "Zh==", "Zm9=", "Zm-v", "Zm_v", "==", "*"}) {
    EXPECT_FALSE(base64_decode(t)) << t;
  }
}

TEST(sasl, mechanism_names) {
  EXPECT_EQ(parse_mechanism("plain"), sasl_mechanism::plain);
  EXPECT_EQ(parse_mechanism("LOGIN"), sasl_mechanism::login);
  EXPECT_EQ(parse_mechanism("Cram-Md5"), sasl_mechanism::cram_md5);
  EXPECT_EQ(parse_mechanism("XOAUTH2"), sasl_mechanism::xoauth2);
  EXPECT_EQ(parse_mechanism("GSSAPI"), sasl_mechanism::unknown);
  EXPECT_EQ(parse_mechanism(""), sasl_mechanism::unknown);
  EXPECT_EQ(mechanism_name(sasl_mechanism::cram_md5), "CRAM-MD5");
  EXPECT_EQ(mechanism_name(sasl_mechanism::unknown), "");
}

// RFC 4616: message = [authzid] UTF8NUL authcid UTF8NUL passwd
TEST(sasl, plain) {
  auto c = parse_plain("\0tim\0tanstaaftanstaaf"s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->authzid, "");
  EXPECT_EQ(c->user, "tim");
  EXPECT_EQ(c->secret, "tanstaaftanstaaf");
  auto z = parse_plain("admin\0tim\0pw"s);
  ASSERT_TRUE(z);
  EXPECT_EQ(z->authzid, "admin");
}

TEST(sasl, plain_rejections) {
  for (const std::string& t : {"tim"s, "\0tim"s, "\0\0pw"s, "a\0b\0c\0d"s, ""s}) {
    EXPECT_FALSE(parse_plain(t)) << testing::PrintToString(t);
  }
}

TEST(sasl, xoauth2) {
  auto c = parse_xoauth2(
      "user=someone@example.com\x01"
      "auth=Bearer ya29.vF9dft4qmT\x01\x01");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "someone@example.com");
  EXPECT_EQ(c->secret, "ya29.vF9dft4qmT");
  // Field order and extra fields are tolerated; the scheme is case-insensitive.
  auto d = parse_xoauth2(
      "host=mx\x01"
      "auth=bearer tok\x01user=u\x01\x01");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->user, "u");
  EXPECT_EQ(d->secret, "tok");
}

TEST(sasl, xoauth2_rejections) {
  for (const std::string& t : {
           "user=u\x01"
           "auth=Bearer t\x01"s,  // one \x01 at the end
           "user=u\x01"
           "auth=Bearer t"s,          // none
           "auth=Bearer t\x01\x01"s,  // no user
           "user=u\x01\x01"s,         // no token
           "user=\x01"
           "auth=Bearer t\x01\x01"s,  // empty user
           "user=u\x01"
           "auth=Bearer \x01\x01"s,  // empty token
           "user=u\x01"
           "auth=Basic dTpw\x01\x01"s,  // not a bearer token
           "user=u\x01\x01"
           "auth=Bearer t\x01\x01"s,
           "user=u\x01user=v\x01"
           "auth=Bearer t\x01\x01"s,
       }) {
    EXPECT_FALSE(parse_xoauth2(t)) << testing::PrintToString(t);
  }
}

TEST(sasl, cram_md5_response) {
  auto c = parse_cram_md5("tim b913a602c7eda7a495b4e6e7334d3890");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user, "tim");
  EXPECT_EQ(c->secret, "b913a602c7eda7a495b4e6e7334d3890");
  auto spaced = parse_cram_md5("tim the enchanter B913A602C7EDA7A495B4E6E7334D3890");
  ASSERT_TRUE(spaced);
  EXPECT_EQ(spaced->user, "tim the enchanter");
  EXPECT_EQ(spaced->secret, "b913a602c7eda7a495b4e6e7334d3890");
}

TEST(sasl, cram_md5_rejections) {
  for (const char* t :
       {"", "tim", " b913a602c7eda7a495b4e6e7334d3890", "tim b913a602c7eda7a495b4e6e7334d389",
        "tim b913a602c7eda7a495b4e6e7334d38900", "tim g913a602c7eda7a495b4e6e7334d3890",
        "tim b913a602c7eda7a495b4e6e7334d3890 "}) {
    EXPECT_FALSE(parse_cram_md5(t)) << '"' << t << '"';
  }
}

// RFC 2195 section 2 example.
TEST(sasl, cram_md5_digest_rfc2195) {
  EXPECT_EQ(cram_md5_digest("tanstaaftanstaaf", "<1896.697170952@postoffice.reston.mci.net>"),
            "b913a602c7eda7a495b4e6e7334d3890");
}

// RFC 1321 appendix A.5 test suite.
TEST(md5, rfc1321_vectors) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5_hex("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(md5_hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "d174ab98d277d9f5a5611c2c9f419d9f");
  EXPECT_EQ(md5_hex("1234567890123456789012345678901234567890"
                    "1234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(md5, padding_boundaries) {
  // 55, 56 and 64 octets straddle the length field; values from Python's hashlib.
  EXPECT_EQ(md5_hex(std::string(55, 'a')), "ef1772b6dff9a122358552954ad0df65");
  EXPECT_EQ(md5_hex(std::string(56, 'a')), "3b0c8ac703f828b04c6c197006d17218");
  EXPECT_EQ(md5_hex(std::string(64, 'a')), "014842d480b571495a4a0363793f7367");
}

// RFC 2202 section 2 HMAC-MD5 test cases.
TEST(md5, hmac_rfc2202_vectors) {
  EXPECT_EQ(hex(hmac_md5(std::string(16, '\x0b'), "Hi There")), "9294727a3638bb1c13f48ef8158bfc9d");
  EXPECT_EQ(hex(hmac_md5("Jefe", "what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738");
  EXPECT_EQ(hex(hmac_md5(std::string(16, '\xaa'), std::string(50, '\xdd'))),
            "56be34521d144c88dbb8c733f0e8b3f6");
  std::string key4;
  for (int i = 1; i <= 25; ++i)
    key4 += static_cast<char>(i);
  EXPECT_EQ(hex(hmac_md5(key4, std::string(50, '\xcd'))), "697eaf0aca3a3aea3a75164746ffaa79");
  EXPECT_EQ(hex(hmac_md5(std::string(16, '\x0c'), "Test With Truncation")),
            "56461ef2342edc00f9bab995690efd4c");
  EXPECT_EQ(hex(hmac_md5(std::string(80, '\xaa'),
                         "Test Using Larger Than Block-Size Key - Hash Key First")),
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd");
  EXPECT_EQ(hex(hmac_md5(std::string(80, '\xaa'),
                         "Test Using Larger Than Block-Size Key and Larger Than One "
                         "Block-Size Data")),
            "6f630fad67cda0ee1fb1f562db3aa53e");
}

// RFC 4954 4: "mechanism [SP initial-response]"; more spaces are taken as one, and said.
TEST(split_auth_argument, parts_and_extra_spaces) {
  auto one = split_auth_argument("PLAIN AGFAYg==");
  EXPECT_EQ(one.mechanism, "PLAIN");
  EXPECT_EQ(one.initial_response, "AGFAYg==");
  EXPECT_FALSE(one.extra_spaces);
  auto alone = split_auth_argument("LOGIN");
  EXPECT_EQ(alone.mechanism, "LOGIN");
  EXPECT_FALSE(alone.initial_response);
  auto spaced = split_auth_argument("  CRAM-MD5");
  EXPECT_EQ(spaced.mechanism, "CRAM-MD5");
  EXPECT_FALSE(spaced.initial_response);
  EXPECT_TRUE(spaced.extra_spaces);
  auto between = split_auth_argument("PLAIN  =");
  EXPECT_EQ(between.initial_response, "=");
  EXPECT_TRUE(between.extra_spaces);
  auto empty = split_auth_argument("PLAIN ");
  EXPECT_EQ(empty.initial_response, "") << "a space with nothing after it: an empty response";
  EXPECT_FALSE(empty.extra_spaces);
}

}  // namespace
}  // namespace smtpfault::proto
