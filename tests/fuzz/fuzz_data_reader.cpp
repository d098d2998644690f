// DATA reader: the result must not depend on how the stream is cut (checked against one
// whole-buffer pass), and the body never exceeds the size cap.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/data_reader.hpp"

namespace {

struct outcome {
  std::string body;
  std::size_t consumed = 0;
  bool done = false;
  std::uint64_t anomalies = 0;
};

outcome run(std::string_view stream, std::size_t chunk, std::size_t line, std::uint64_t cap) {
  smtpfault::proto::data_reader reader(line, cap);
  outcome o;
  for (std::size_t at = 0; at < stream.size() && !o.done; at += chunk) {
    auto piece = stream.substr(at, chunk);
    auto r = reader.feed(piece, o.body);
    o.consumed += r.consumed;
    o.done = r.done;
    if (!r.done && r.consumed != piece.size()) std::abort();
  }
  o.anomalies = reader.anomaly_count();
  if (cap && o.body.size() > cap) std::abort();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::size_t line = data[0] % 4 == 0 ? 0 : 4 + data[0];
  const std::uint64_t cap = data[1] % 3 == 0 ? 0 : 8 + data[1];
  const std::size_t chunk = 1 + data[2] % 13;
  std::string_view stream(reinterpret_cast<const char*>(data + 3), size - 3);
  outcome whole = run(stream, stream.size() + 1, line, cap);
  outcome cut = run(stream, chunk, line, cap);
  if (whole.body != cut.body || whole.consumed != cut.consumed || whole.done != cut.done ||
      whole.anomalies != cut.anomalies) {
    std::abort();
  }
  return 0;
}
