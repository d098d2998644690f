// Address globs (API filters, fault rules, smtp.matches): a pattern and a text from the input,
// split at the first NUL. Never slow on any pattern (libFuzzer's timeout catches a blow-up),
// and two properties that hold for every input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/glob.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const auto pattern = input.substr(0, nul);
  const auto text = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  (void)smtpfault::proto::glob_match(pattern, text);
  if (!smtpfault::proto::glob_match("*", text)) std::abort();
  // Without wildcards a pattern matches itself.
  if (pattern.find_first_of("*?") == std::string_view::npos &&
      !smtpfault::proto::glob_match(pattern, pattern)) {
    std::abort();
  }
  return 0;
}
