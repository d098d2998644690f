// Client-side reply reader: lines from the input, in order; malformed replies are values.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  smtpfault::proto::reply_reader reader;
  while (!input.empty()) {
    auto nl = input.find('\n');
    auto line = input.substr(0, nl);
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
    auto st = reader.feed_line(line);
    if (st != smtpfault::proto::reply_reader::status::need_more) {
      auto r = reader.take();
      // What was read must format again without trouble.
      (void)smtpfault::proto::to_wire(r);
    }
  }
  return 0;
}
