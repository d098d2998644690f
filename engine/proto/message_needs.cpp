#include "proto/message_needs.hpp"

#include "proto/mime.hpp"

namespace smtpfault::proto {

namespace {

// The name of the field whose line holds header[at]: a folded field is named by its first
// line, a line that is no field by itself.
std::string field_name_at(std::string_view header, std::size_t at) {
  // The start of the line that holds header[pos].
  const auto line_start = [&](std::size_t pos) {
    const std::size_t eol = header.rfind('\n', pos);
    return eol == std::string_view::npos ? 0 : eol + 1;
  };
  std::size_t start = line_start(at);
  while (start >= 2 && (header[start] == ' ' || header[start] == '\t'))
    start = line_start(start - 2);
  std::string_view line = header.substr(start, header.find('\n', start) - start);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return std::string(line.substr(0, line.find(':')));
}

}  // namespace

message_needs needs_of(std::string_view message) {
  message_needs needs;
  const std::size_t first = first_8bit(message);
  needs.eight_bit = first != std::string_view::npos;
  // The first 8-bit octet is in the header, or none there is.
  if (!needs.eight_bit || first >= body_offset(message)) return needs;
  needs.non_ascii_header = field_name_at(message.substr(0, body_offset(message)), first);
  return needs;
}

}  // namespace smtpfault::proto
