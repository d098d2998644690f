#include "proto/bdat.hpp"

#include <algorithm>

namespace smtpfault::proto {

std::optional<bdat_args> parse_bdat_args(std::string_view argument) {
  constexpr std::uint64_t max_size = (std::uint64_t{1} << 63) - 1;
  bdat_args args;
  std::size_t i = 0;
  for (; i < argument.size() && argument[i] >= '0' && argument[i] <= '9'; ++i) {
    std::uint64_t digit = static_cast<std::uint64_t>(argument[i] - '0');
    if (args.size > (max_size - digit) / 10) return std::nullopt;
    args.size = args.size * 10 + digit;
  }
  if (i == 0) return std::nullopt;
  std::string_view rest = argument.substr(i);
  if (rest.empty()) return args;
  if (rest.size() != 5 || rest[0] != ' ') return std::nullopt;
  constexpr std::string_view last = "LAST";
  for (std::size_t k = 0; k < last.size(); ++k) {
    char c = rest[k + 1];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != last[k]) return std::nullopt;
  }
  args.last = true;
  return args;
}

std::size_t bdat_reader::feed(std::string_view input, std::string& body) {
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size()));
  std::size_t keep = n;
  if (max_size_ != 0) {
    std::uint64_t room = total_ < max_size_ ? max_size_ - total_ : 0;
    keep = static_cast<std::size_t>(std::min<std::uint64_t>(room, n));
  }
  body.append(input.data(), keep);
  total_ += n;
  remaining_ -= n;
  if (max_size_ != 0 && total_ > max_size_) size_exceeded_ = true;
  return n;
}

}  // namespace smtpfault::proto
