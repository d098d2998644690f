#include "fault/wire.hpp"

#include <algorithm>

namespace smtpfault::fault {

namespace {

std::string line_text(const proto::reply& r, std::size_t i) {
  const std::string& text = i < r.lines.size() ? r.lines[i] : std::string();
  if (r.enhanced.empty()) return text;
  return text.empty() ? r.enhanced : r.enhanced + " " + text;
}

void append_malformed(std::string& out, const proto::reply& r, malformed_kind kind) {
  const std::string code = std::to_string(r.code);
  switch (kind) {
    case malformed_kind::mixed_codes: {
      // Every continuation line claims a different code than the last line (RFC 5321 4.2.1
      // requires them to be equal).
      const std::string other = std::to_string(r.code == 250 ? 251 : r.code + 1);
      std::size_t n = std::max<std::size_t>(r.lines.size(), 2);
      for (std::size_t i = 0; i < n; ++i) {
        bool last = i + 1 == n;
        out += (last ? code : other) + (last ? " " : "-") + line_text(r, i) + "\r\n";
      }
      break;
    }
    case malformed_kind::missing_space:
      out += code + line_text(r, 0) + "\r\n";
      break;
    case malformed_kind::long_line:
      // Four times the 512-octet reply line limit (RFC 5321 4.5.3.1.5).
      out += code + " " + line_text(r, 0) + " " + std::string(2048, 'x') + "\r\n";
      break;
    case malformed_kind::garbage: {
      // sizeof, not a hand count: the literal holds a NUL, and every octet must go out.
      static constexpr char garbage[] =
          "\x16\x03\x01\x00\xff garbage \x01\x02\x03 not an SMTP reply\r\n";
      out.append(garbage, sizeof garbage - 1);
      break;
    }
    case malformed_kind::none:
      break;
  }
}

}  // namespace

void append_reply_bytes(std::string& out, const proto::reply& r, const action* a) {
  if (a && a->raw) {
    out += *a->raw;
  } else if (a && a->malformed != malformed_kind::none) {
    append_malformed(out, r, a->malformed);
  } else {
    proto::append_wire(out, r);
  }
}

std::vector<std::size_t> write_cuts(const action& a, std::size_t size) {
  std::vector<std::size_t> cuts;
  if (a.trickle_bytes > 0) {
    for (std::size_t at = a.trickle_bytes; at < size; at += a.trickle_bytes)
      cuts.push_back(at);
    return cuts;
  }
  for (auto at : a.split_at)
    if (at > 0 && at < size) cuts.push_back(at);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

}  // namespace smtpfault::fault
