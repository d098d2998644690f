// RFC 2047 encoded words: any header text decodes without crashing, to valid UTF-8 when the
// input was, and text without "=?" comes back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/header_words.hpp"
#include "proto/utf8.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace p = smtpfault::proto;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto out = p::decode_encoded_words(input);
  if (p::valid_utf8(input) && !p::valid_utf8(out)) std::abort();
  if (input.find("=?") == std::string_view::npos && out != input) std::abort();
  return 0;
}
