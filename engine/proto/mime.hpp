// The MIME structure of a received message (RFC 2045, 2046, 2183, 2231): its leaf parts, where
// each body lies in the message text, and that body decoded, so that a test can read the text a
// mailer sent and the attachments it added without a MIME library of its own. Pure: no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpfault::proto {

struct header_field {
  std::string name;
  std::string value;  // unfolded, leading and trailing whitespace removed
};

// A header section (up to the first empty line), unfolded; at most max_fields fields. Lines that
// are no field (no colon) are skipped.
std::vector<header_field> header_fields(std::string_view text, std::size_t max_fields = 1000);
// Where the body of a message (or part) begins, as header_fields and mime_parts see it: after
// the first empty line; without one, at the first line that is neither a field nor a field's
// continuation (the whole text when every line is one).
std::size_t body_offset(std::string_view text);
// The first field of that name (case-insensitive), if any.
std::optional<std::string> header_value(const std::vector<header_field>& h, std::string_view name);

struct mime_part {
  std::string path;          // where it sits in the tree: "1", "2.1"; "1" for a message of one part
  std::string content_type;  // lower case; "text/plain" when none is given (RFC 2045 5.2)
  std::string charset;       // lower case; "" when none is given
  std::string transfer_encoding;  // lower case; "7bit" when none is given
  std::string disposition;        // "inline", "attachment", or "" when none is given
  std::string filename;           // Content-Disposition filename, else Content-Type name; decoded
  std::string content_id;         // "<logo@x>", what cid: URLs in an HTML part point at
  std::size_t body_offset = 0;    // the part's body as sent (encoded) in the message text
  std::size_t body_length = 0;
  bool attachment() const {
    return disposition == "attachment" || (!filename.empty() && disposition != "inline");
  }
};

struct mime_structure {
  std::vector<mime_part> parts;  // the leaves, in the order they appear
  // What did not follow the rules and how the reading coped: "multipart/mixed at 1 has no
  // boundary: read as one part", "part 2: no closing boundary". Empty when nothing did.
  std::vector<std::string> problems;
};

// Limits, so that a hostile message cannot make the reading costly: parts (multiparts counted)
// beyond max_parts and multiparts nested deeper than max_depth are not read, and a problem says
// so; problems past 20 are counted as one.
constexpr std::size_t max_mime_parts = 1000;
constexpr std::size_t max_mime_depth = 20;

mime_structure mime_parts(std::string_view message);

// A body as its Content-Transfer-Encoding has it (base64, quoted-printable), decoded to octets;
// other encodings are returned as they are. Octets base64 does not use (line breaks) are
// skipped; nothing when base64 text is malformed beyond that.
std::optional<std::string> decode_transfer(std::string_view body, std::string_view encoding);

}  // namespace smtpfault::proto
