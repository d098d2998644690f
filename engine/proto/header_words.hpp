// RFC 2047 encoded words in header fields ("=?utf-8?B?R3LDvMOfZQ==?="), so that a subject the
// mailer encoded can be shown and searched as the text it stands for.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::proto {

// The field's text with its encoded words decoded to UTF-8. Words in a charset other than
// UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15 or windows-1252 (or their aliases), malformed ones, and
// ones that decode to invalid UTF-8 stay as they are; white space between two encoded words goes
// (RFC 2047 6.2). A character split across adjacent UTF-8 words is joined.
std::string decode_encoded_words(std::string_view text);

// Octets in a charset (any case; "" for none) as UTF-8: UTF-8, US-ASCII and none as they are (an
// octet that starts no UTF-8 character becomes U+FFFD), ISO-8859-1, ISO-8859-15 and
// windows-1252 converted (also by their aliases, such as "latin1"); nothing for another charset.
std::optional<std::string> text_as_utf8(std::string_view octets, std::string_view charset);

}  // namespace smtpfault::proto
