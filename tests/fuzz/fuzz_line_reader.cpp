// Line framing: the first octet picks the limit and the chunk size, the rest is the stream.
// Invariant: whatever the chunking, every octet is consumed exactly once and lines respect the
// limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/line_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_line = 2 + data[0] % 64;
  const std::size_t chunk = 1 + data[1] % 17;
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);
  smtpfault::proto::line_reader reader(max_line);
  std::string pending;
  std::size_t consumed_total = 0;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    pending.append(stream.substr(at, chunk));
    for (;;) {
      auto r = reader.next(pending);
      if (r.consumed > pending.size()) std::abort();
      if (r.st == smtpfault::proto::line_reader::status::line && r.line.size() + 1 > max_line) {
        std::abort();
      }
      consumed_total += r.consumed;
      pending.erase(0, r.consumed);
      if (r.st == smtpfault::proto::line_reader::status::need_more) break;
    }
    if (pending.size() > max_line) std::abort();  // memory stays bounded
  }
  if (consumed_total + pending.size() != stream.size()) std::abort();
  return 0;
}
