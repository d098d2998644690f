#include "proto/data_encoding.hpp"

namespace smtpfault::proto {

std::string encode_data(std::string_view body, std::string_view eol) {
  std::string out;
  out.reserve(body.size() + body.size() / 16 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
      out += eol;
      line_start = true;
      continue;
    }
    if (line_start && c == '.') out += '.';
    out += c;
    line_start = false;
  }
  if (!line_start) out += eol;
  out += '.';
  out += eol;
  return out;
}

stuffed_message stuff_message(std::string_view message) {
  stuffed_message out;
  out.octets.reserve(message.size() + message.size() / 16 + 8);
  std::size_t stuffing = 0;
  bool line_start = true;
  for (char c : message) {
    if (line_start && c == '.') out.octets += '.', ++stuffing;
    out.octets += c;
    line_start = c == '\n';
  }
  if (!line_start) out.octets += out.octets.back() == '\r' ? "\n" : "\r\n";
  out.size = out.octets.size() - stuffing;
  out.octets += ".\r\n";
  return out;
}

}  // namespace smtpfault::proto
