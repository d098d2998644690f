// Paths and ESMTP parameters: parse_path with and without <Postmaster>, under tight limits too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  smtpfault::proto::limits normal;
  smtpfault::proto::limits tight;
  tight.local_part = 4;
  tight.domain = 8;
  tight.path = 12;
  for (const auto* lim : {&normal, &tight}) {
    for (bool postmaster : {false, true}) {
      auto r = smtpfault::proto::parse_path(text, *lim, postmaster);
      if (r) (void)r->address();
    }
  }
  return 0;
}
