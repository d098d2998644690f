// Client-side reply stream (what `run` and `send` read from a server that may be hostile): bytes
// in chunks of sizes taken from the input, every reply taken out as it completes. A malformed
// reply is a value; memory stays within the stream's bounds; text for error messages is
// printable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/reply_stream.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first octet sets the chunk size (1-256): replies split anywhere across reads.
  const std::size_t chunk = std::size_t{data[0]} + 1;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  smtpfault::proto::reply_stream stream(512);
  while (!input.empty()) {
    const auto piece = input.substr(0, chunk);
    input.remove_prefix(piece.size());
    stream.feed(piece);
    for (;;) {
      auto r = stream.next();
      if (r.st == smtpfault::proto::reply_stream::status::need_more) break;
      if (r.st == smtpfault::proto::reply_stream::status::reply) {
        (void)smtpfault::proto::to_wire(r.reply);
        if (r.reply.code < 100 || r.reply.code > 999) std::abort();
      } else if (r.error.empty()) {
        std::abort();  // a malformed reply always says why
      }
    }
    if (stream.buffered() > smtpfault::proto::reply_stream::max_unread) std::abort();
  }
  // The escaped form carries no control character of its own: no C0 or DEL, no C1 (U+0080-
  // U+009F, C2 80-9F in UTF-8), no bidirectional control (U+200E/F, U+202A-E, U+2066-9).
  const auto shown =
      smtpfault::proto::printable(std::string_view(reinterpret_cast<const char*>(data), size));
  for (std::size_t i = 0; i < shown.size(); ++i) {
    const auto at = [&](std::size_t k) {
      return i + k < shown.size() ? static_cast<unsigned char>(shown[i + k]) : 0;
    };
    const unsigned char c = at(0);
    if (c < 0x20 || c == 0x7f) std::abort();
    if (c == 0xC2 && at(1) >= 0x80 && at(1) <= 0x9F) std::abort();
    if (c == 0xE2 && at(1) == 0x80 &&
        (at(2) == 0x8E || at(2) == 0x8F || (at(2) >= 0xAA && at(2) <= 0xAE))) {
      std::abort();
    }
    if (c == 0xE2 && at(1) == 0x81 && at(2) >= 0xA6 && at(2) <= 0xA9) std::abort();
  }
  stream.discard();
  if (stream.buffered() != 0) std::abort();
  return 0;
}
