// RFC 2045/2046 structure, RFC 2183/2231 file names, and the transfer encodings.
#include "proto/mime.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "proto/header_words.hpp"

namespace smtpfault::proto {
namespace {

std::string body_of(std::string_view message, const mime_part& p) {
  return std::string(message.substr(p.body_offset, p.body_length));
}

TEST(mime, a_message_without_content_type_is_one_plain_text_part) {
  const std::string m = "Subject: hi\r\n\r\nhello\r\n";
  auto s = mime_parts(m);
  ASSERT_EQ(s.parts.size(), 1u);
  EXPECT_EQ(s.parts[0].path, "1");
  EXPECT_EQ(s.parts[0].content_type, "text/plain");
  EXPECT_EQ(s.parts[0].transfer_encoding, "7bit");
  EXPECT_EQ(body_of(m, s.parts[0]), "hello\r\n");
  EXPECT_TRUE(s.problems.empty());
}

const char* nested =
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble, not a part\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=ISO-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Gr=FC=DFe, a soft=\r\n"
    " break\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>hi</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/octet-stream; name=\"ignored.bin\"\r\n"
    "Content-Disposition: attachment; filename=\"report.csv\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "YSxi\r\n"
    "LGMK\r\n"
    "--outer--\r\n"
    "epilogue, not a part\r\n";

TEST(mime, nested_multiparts_give_their_leaves_with_paths) {
  const std::string m = nested;
  auto s = mime_parts(m);
  ASSERT_EQ(s.parts.size(), 3u);
  EXPECT_EQ(s.parts[0].path, "1.1");
  EXPECT_EQ(s.parts[0].charset, "iso-8859-1");
  EXPECT_EQ(s.parts[0].transfer_encoding, "quoted-printable");
  EXPECT_EQ(body_of(m, s.parts[0]), "Gr=FC=DFe, a soft=\r\n break");
  EXPECT_EQ(s.parts[1].path, "1.2");
  EXPECT_EQ(body_of(m, s.parts[1]), "<p>hi</p>");
  EXPECT_EQ(s.parts[2].path, "2");
  EXPECT_EQ(s.parts[2].filename, "report.csv");  // Content-Disposition wins over name
  EXPECT_TRUE(s.parts[2].attachment());
  EXPECT_FALSE(s.parts[0].attachment());
  EXPECT_EQ(decode_transfer(body_of(m, s.parts[2]), "base64"), "a,b,c\n");
  auto text = decode_transfer(body_of(m, s.parts[0]), s.parts[0].transfer_encoding);
  ASSERT_TRUE(text);
  EXPECT_EQ(text_as_utf8(*text, s.parts[0].charset),
            "Gr\xC3\xBC\xC3\x9F"
            "e, a soft break");
  EXPECT_TRUE(s.problems.empty());
}

TEST(mime, bare_line_feeds_work_as_line_ends) {
  const std::string m =
      "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\none\n--b\n\n"
      "two\n--b--\n";
  auto s = mime_parts(m);
  ASSERT_EQ(s.parts.size(), 2u);
  EXPECT_EQ(body_of(m, s.parts[0]), "one");
  EXPECT_EQ(body_of(m, s.parts[1]), "two");
  EXPECT_EQ(s.parts[1].content_type, "text/plain");  // no headers: the default
}

TEST(mime, a_boundary_that_is_missing_or_never_closed_is_said) {
  auto no_boundary = mime_parts("Content-Type: multipart/mixed\r\n\r\nbody\r\n");
  ASSERT_EQ(no_boundary.parts.size(), 1u);
  EXPECT_EQ(no_boundary.parts[0].content_type, "multipart/mixed");
  ASSERT_EQ(no_boundary.problems.size(), 1u);
  EXPECT_EQ(no_boundary.problems[0],
            "the message is multipart/mixed without a boundary: read as one part");

  const std::string open = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nlast";
  auto unclosed = mime_parts(open);
  ASSERT_EQ(unclosed.parts.size(), 1u);
  EXPECT_EQ(body_of(open, unclosed.parts[0]), "last");
  ASSERT_EQ(unclosed.problems.size(), 1u);
  EXPECT_EQ(unclosed.problems[0],
            "the message: no closing boundary \"--b--\": its last part runs to the end");

  auto never = mime_parts("Content-Type: multipart/mixed; boundary=b\r\n\r\nno delimiter\r\n");
  ASSERT_EQ(never.parts.size(), 1u);
  EXPECT_EQ(never.problems[0], "the message: no line with its boundary \"--b\": read as one part");
}

TEST(mime, a_multipart_closed_before_its_first_part_is_said) {
  auto s = mime_parts("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n");
  EXPECT_TRUE(s.parts.empty());
  ASSERT_EQ(s.problems.size(), 1u);
  EXPECT_EQ(s.problems[0],
            "the message: closed by \"--b--\" before its first part: it has no parts");
}

TEST(mime, a_part_without_its_empty_line_begins_its_text_at_the_first_line_no_field) {
  const std::string m =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n"
      "<p>hi</p>\r\n--b\r\nplain text, no headers\r\n--b--\r\n";
  auto s = mime_parts(m);
  ASSERT_EQ(s.parts.size(), 2u);
  EXPECT_EQ(s.parts[0].content_type, "text/html");
  EXPECT_EQ(body_of(m, s.parts[0]), "<p>hi</p>");
  EXPECT_EQ(body_of(m, s.parts[1]), "plain text, no headers");
  ASSERT_EQ(s.problems.size(), 2u);
  EXPECT_EQ(s.problems[0],
            "part 1: no empty line after its header fields: its text begins at the first line "
            "that is no field");
  // Header fields only, and nothing else: a part with an empty body, as before.
  auto h = mime_parts(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n"
      "--b--\r\n");
  ASSERT_EQ(h.parts.size(), 1u);
  EXPECT_EQ(h.parts[0].content_type, "text/html");
  EXPECT_EQ(h.parts[0].body_length, 0u);
  EXPECT_TRUE(h.problems.empty());
}

TEST(mime, parts_of_a_digest_are_messages_unless_typed) {
  const std::string m =
      "Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nSubject: one\r\n\r\nx\r\n"
      "--b\r\nContent-Type: text/plain\r\n\r\nintro\r\n--b--\r\n";
  auto s = mime_parts(m);
  ASSERT_EQ(s.parts.size(), 2u);
  EXPECT_EQ(s.parts[0].content_type, "message/rfc822");
  EXPECT_EQ(s.parts[1].content_type, "text/plain");
  auto mixed = mime_parts("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--");
  EXPECT_EQ(mixed.parts[0].content_type, "text/plain");
}

TEST(mime, a_boundary_inside_a_line_is_text_and_a_longer_one_is_another) {
  const std::string m =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nsee --b "
      "here\r\n--bb\r\n--b--\r\n";
  auto s = mime_parts(m);
  ASSERT_EQ(s.parts.size(), 1u);
  EXPECT_EQ(body_of(m, s.parts[0]), "see --b here\r\n--bb");
}

TEST(mime, file_names_in_rfc_2231_and_rfc_2047_forms) {
  auto s = mime_parts(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\nx\r\n"
      "--b\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''long%20;\r\n"
      " filename*1=\"name.txt\"\r\n\r\nx\r\n"
      "--b\r\nContent-Type: text/plain; name=\"=?UTF-8?B?w6TDtsO8LnR4dA==?=\"\r\n\r\nx\r\n"
      "--b\r\nContent-Disposition: inline; filename=\"a \\\"quoted\\\" name.png\"\r\n\r\nx\r\n"
      "--b--\r\n");
  ASSERT_EQ(s.parts.size(), 4u);
  EXPECT_EQ(s.parts[0].filename, "\xE2\x82\xAC rates.txt");
  EXPECT_EQ(s.parts[1].filename, "long name.txt");
  EXPECT_EQ(s.parts[2].filename, "\xC3\xA4\xC3\xB6\xC3\xBC.txt");
  EXPECT_TRUE(s.parts[2].attachment());  // a name and no disposition: a file
  EXPECT_EQ(s.parts[3].filename, "a \"quoted\" name.png");
  EXPECT_FALSE(s.parts[3].attachment());  // inline, though named
}

// Given both, as mailers do for old readers, the RFC 2231 name wins whatever the order; one in a
// charset that is not converted is still valid UTF-8.
TEST(mime, an_rfc_2231_file_name_wins_over_a_plain_one) {
  auto s = mime_parts(
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Disposition: attachment; filename*=utf-8''%E2%82%AC.pdf; "
      "filename=\"EUR.pdf\"\r\n\r\nx\r\n"
      "--b\r\nContent-Disposition: attachment; filename*=koi8-r''%F0%D2.txt\r\n"
      "Content-ID: <logo@x>\r\n\r\nx\r\n--b--\r\n");
  ASSERT_EQ(s.parts.size(), 2u);
  EXPECT_EQ(s.parts[0].filename, "\xE2\x82\xAC.pdf");
  EXPECT_EQ(s.parts[1].filename, "\xEF\xBF\xBD\xEF\xBF\xBD.txt");
  EXPECT_EQ(s.parts[1].content_id, "<logo@x>");
}

TEST(mime, nesting_and_part_counts_are_bounded) {
  std::string deep = "\r\nleaf";
  for (int i = 39; i >= 0; --i) {
    const auto b = "b" + std::to_string(i);
    deep = "Content-Type: multipart/mixed; boundary=" + b + "\r\n\r\n--" + b + "\r\n" + deep +
           "\r\n--" + b + "--\r\n";
  }
  auto s = mime_parts(deep);
  ASSERT_EQ(s.parts.size(), 1u);
  EXPECT_EQ(std::count(s.parts[0].path.begin(), s.parts[0].path.end(), '.'),
            static_cast<long>(max_mime_depth) - 1);
  EXPECT_TRUE(std::any_of(s.problems.begin(), s.problems.end(), [](const std::string& p) {
    return p.find("is nested over 20 multiparts deep: read as one part") != std::string::npos;
  }));
  EXPECT_LE(s.problems.size(), 21u);

  std::string many = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (int i = 0; i < 1500; ++i)
    many += "--b\r\n\r\nx\r\n";
  many += "--b--\r\n";
  auto m = mime_parts(many);
  EXPECT_EQ(m.parts.size(), max_mime_parts);  // the message's own multipart does not count
  EXPECT_EQ(m.problems.back(), "over 1000 parts: the rest are not listed");

  // Exactly 1,000 parts are all listed, with no problem said.
  std::string thousand = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (std::size_t i = 0; i < max_mime_parts; ++i)
    thousand += "--b\r\n\r\nx\r\n";
  thousand += "--b--\r\n";
  auto t = mime_parts(thousand);
  EXPECT_EQ(t.parts.size(), max_mime_parts);
  EXPECT_TRUE(t.problems.empty());
}

TEST(mime, transfer_encodings) {
  EXPECT_EQ(decode_transfer("aGVs\r\nbG8=\r\n", "BASE64"), "hello");
  EXPECT_EQ(decode_transfer("aGVsbA", "base64"), "hell");  // no padding
  // RFC 2045 6.8: characters outside the alphabet are ignored; a lone sixth bit is no octet.
  EXPECT_EQ(decode_transfer("aGVs*bG8=", "base64"), "hello");
  EXPECT_EQ(decode_transfer("aGVsb", "base64"), std::nullopt);
  // 6.7: a soft break (also with white space after the "="), trailing white space dropped, a
  // "=" that is no escape kept, a last "=" a soft break.
  EXPECT_EQ(decode_transfer("a=3Db=\r\nc = d =XY  \r\ntrailing=  \r\nend=", "quoted-printable"),
            "a=bc = d =XY\r\ntrailingend");
  EXPECT_EQ(decode_transfer("as =3D is", "8bit"), "as =3D is");
}

TEST(mime, header_fields_unfold_and_stop_at_the_body) {
  auto h = header_fields("Subject: a\r\n  b\r\nX-Empty:\r\nno colon here\r\n\r\nBody: no\r\n");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].value, "a  b");
  EXPECT_EQ(header_value(h, "subject"), "a  b");
  EXPECT_EQ(header_value(h, "Body"), std::nullopt);
  // Without the empty line, the text begins at the first line that is no field: what follows
  // is text too, whatever it looks like (the parts' reader reads it so).
  EXPECT_TRUE(header_fields("just a body line\r\nSubject: not a header\r\n").empty());
  auto some = header_fields("From: a@x.test\r\nhello\r\nSubject: not a header\r\n");
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0].name, "From");
}

}  // namespace
}  // namespace smtpfault::proto
