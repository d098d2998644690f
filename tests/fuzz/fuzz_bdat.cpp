// BDAT: argument parsing (sizes up to 2^63 and beyond) and chunk accounting.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/bdat.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto nl = input.find('\n');
  auto args = smtpfault::proto::parse_bdat_args(input.substr(0, nl));
  if (!args || nl == std::string_view::npos) return 0;
  std::string_view rest = input.substr(nl + 1);
  smtpfault::proto::bdat_reader reader(64);
  reader.start_chunk(args->size);
  std::string body;
  std::size_t used = reader.feed(rest, body);
  if (used > rest.size() || body.size() > 64) std::abort();
  if (reader.chunk_done() != (args->size <= rest.size())) std::abort();
  return 0;
}
