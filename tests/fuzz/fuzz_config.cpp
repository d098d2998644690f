// TOML configuration: any document gives settings or an error message, never an exception.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  smtpfault::config::settings s;
  auto r = smtpfault::config::apply_document(s, text, "fuzz.toml");
  if (!r) (void)r.error().message.size();
  return 0;
}
