// CHUNKING (RFC 3030): BDAT argument parsing and chunk accounting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace smtpfault::proto {

struct bdat_args {
  std::uint64_t size = 0;
  bool last = false;
};

// "1234" or "1234 LAST" (case-insensitive). Rejects sizes that do not fit in 63 bits.
std::optional<bdat_args> parse_bdat_args(std::string_view argument);

// Reads exactly the announced octets of one chunk, raw (no dot-unstuffing), and keeps the
// message total. Octets beyond max_size are counted but not kept.
class bdat_reader {
 public:
  explicit bdat_reader(std::uint64_t max_size) : max_size_(max_size) {}

  void start_chunk(std::uint64_t size) { remaining_ = size; }
  // Consumes up to the chunk's remaining octets; returns how many were consumed.
  std::size_t feed(std::string_view input, std::string& body);
  bool chunk_done() const { return remaining_ == 0; }
  std::uint64_t remaining() const { return remaining_; }
  std::uint64_t total() const { return total_; }
  bool size_exceeded() const { return size_exceeded_; }

 private:
  std::uint64_t max_size_;
  std::uint64_t remaining_ = 0;
  std::uint64_t total_ = 0;
  bool size_exceeded_ = false;
};

}  // namespace smtpfault::proto
