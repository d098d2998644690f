// The MIME reading of a stored message (what GET /api/v1/messages/{id} shows): any octets give
// parts whose bodies lie inside the message, within the limits, and bodies that decode or not
// without crashing; a decoded text is valid UTF-8 once its charset is converted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/header_words.hpp"
#include "proto/mime.hpp"
#include "proto/utf8.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace p = smtpfault::proto;
  const std::string_view message(reinterpret_cast<const char*>(data), size);
  const auto mime = p::mime_parts(message);
  if (mime.parts.size() > p::max_mime_parts || mime.problems.size() > 21) std::abort();
  for (const auto& part : mime.parts) {
    if (part.body_offset > size || part.body_length > size - part.body_offset) std::abort();
    if (part.path.empty() || part.content_type.empty()) std::abort();
    const auto body = message.substr(part.body_offset, part.body_length);
    auto decoded = p::decode_transfer(body, part.transfer_encoding);
    if (!decoded) continue;
    if (auto text = p::text_as_utf8(*decoded, part.charset); text && !p::valid_utf8(*text)) {
      std::abort();
    }
  }
  return 0;
}
