// Command parser: any octets give a command or a failure, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/command.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  smtpfault::proto::limits lim;
  auto r = smtpfault::proto::parse_command(line, lim);
  if (r && (r->kind == smtpfault::proto::verb::mail || r->kind == smtpfault::proto::verb::rcpt)) {
    (void)r->path.address();
    (void)r->find_param("SIZE");
  }
  return 0;
}
