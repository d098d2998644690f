#include "proto/header_words.hpp"

#include <gtest/gtest.h>

namespace smtpfault::proto {
namespace {

TEST(header_words, base64_and_q_words_become_utf8) {
  // "Grüße aus Köln", as Python's email package writes it.
  EXPECT_EQ(decode_encoded_words("=?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4=?="), "Grüße aus Köln");
  EXPECT_EQ(decode_encoded_words("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="), "Grüße aus Köln");
  EXPECT_EQ(decode_encoded_words("=?iso-8859-1?q?caf=E9?="), "café");
  // Outlook's windows-1252: the euro sign and curly quotes live where ISO-8859-1 has controls.
  EXPECT_EQ(decode_encoded_words("=?windows-1252?Q?=80_5_=93off=94_caf=E9?="),
            "\u20AC 5 \u201Coff\u201D café");
  EXPECT_EQ(decode_encoded_words("=?cp1252?B?gQ==?="), "\u0081");  // undefined: the C1 control
}

TEST(header_words, charset_aliases_and_latin9_are_converted) {
  EXPECT_EQ(decode_encoded_words("=?latin1?q?caf=E9?= =?ISO8859-1?q?_caf=E9?="), "café café");
  EXPECT_EQ(decode_encoded_words("=?Latin-1?q?=E9?="), "é");
  EXPECT_EQ(decode_encoded_words("=?utf8?q?=C3=A9?="), "é");
  // ISO-8859-15 has the euro sign where ISO-8859-1 has the currency sign.
  EXPECT_EQ(decode_encoded_words("=?iso-8859-15?q?5_=A4_=BD?="), "5 \u20AC \u0153");
  EXPECT_EQ(decode_encoded_words("=?iso-8859-1?q?5_=A4_=BD?="), "5 \u00A4 \u00BD");
  // A word without a charset is not decoded.
  EXPECT_EQ(decode_encoded_words("=??q?x?="), "=??q?x?=");
  EXPECT_EQ(text_as_utf8("\xA4", "LATIN9"), "\u20AC");
  EXPECT_EQ(text_as_utf8("\xE9", "l1"), "\u00E9");
  EXPECT_EQ(text_as_utf8("\xE9", "koi8-r"), std::nullopt);
}

TEST(header_words, space_between_words_goes_and_around_them_stays) {
  EXPECT_EQ(decode_encoded_words("Re: =?utf-8?q?a?= =?utf-8?q?b?= end"), "Re: ab end");
  EXPECT_EQ(decode_encoded_words("=?utf-8?q?a?=\r\n =?utf-8?q?b?="), "ab");
  EXPECT_EQ(decode_encoded_words("plain  text "), "plain  text ");
}

TEST(header_words, a_character_split_across_adjacent_words_is_joined) {
  // "ü" is C3 BC: some mailers cut a long subject between the two octets.
  EXPECT_EQ(decode_encoded_words("=?utf-8?q?Gr=C3?= =?utf-8?q?=BC=C3=9Fe?="), "Grüße");
  EXPECT_EQ(decode_encoded_words("=?utf-8?b?R3LD?=\r\n =?UTF-8?B?vMOfZQ==?= end"), "Grüße end");
  EXPECT_EQ(decode_encoded_words("=?iso-8859-1?q?x?= =?utf-8?q?=C3?= =?utf-8?q?=BC?="), "x\u00FC");
  // A word of another charset between the halves ends the run: neither half is valid alone.
  EXPECT_EQ(decode_encoded_words("=?utf-8?q?=C3?= =?iso-8859-1?q?x?= =?utf-8?q?=BC?="),
            "=?utf-8?q?=C3?= x =?utf-8?q?=BC?=");
  // Joined but still not UTF-8: each word is judged alone, as before.
  EXPECT_EQ(decode_encoded_words("=?utf-8?q?a?= =?utf-8?q?=FF?= =?utf-8?q?b?="),
            "a =?utf-8?q?=FF?= b");
  // ... and the space between two words that decode still goes, on either side of the run.
  EXPECT_EQ(decode_encoded_words("=?iso-8859-1?q?x?= =?utf-8?q?a?= =?utf-8?q?=FF?="),
            "xa =?utf-8?q?=FF?=");
  EXPECT_EQ(decode_encoded_words("=?utf-8?q?=FF?= =?utf-8?q?a?= =?iso-8859-1?q?x?="),
            "=?utf-8?q?=FF?= ax");
}

TEST(header_words, what_cannot_be_decoded_stays_as_it_is) {
  for (const char* kept :
       {"=?koi8-r?b?8NLJ18XU?=", "=?utf-8?x?abc?=", "=?utf-8?b?not base64?=", "=?utf-8?q?=Z1?=",
        "=?utf-8?q?=A?=", "=?utf-8?b?/w==?=", "=?utf-8?q?open", "=?", "=??q?x?=", "a=?b"}) {
    EXPECT_EQ(decode_encoded_words(kept), kept) << kept;
  }
  // A word that stays keeps the space before the next one.
  EXPECT_EQ(decode_encoded_words("=?koi8-r?q?x?= =?utf-8?q?y?="), "=?koi8-r?q?x?= y");
}

}  // namespace
}  // namespace smtpfault::proto
