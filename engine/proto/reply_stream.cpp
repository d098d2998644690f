#include "proto/reply_stream.hpp"

#include <utility>

#include "proto/utf8.hpp"

namespace smtpfault::proto {

std::string endless_line(std::size_t max_line) {
  return "a reply line longer than " + std::to_string(max_line) + " octets, still without its end";
}

std::string printable(std::string_view raw, std::size_t max, bool escape_backslash) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  auto escape = [&](unsigned char c) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
  };
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (out.size() >= max) {
      out += "... (" + std::to_string(raw.size()) + " octets)";
      break;
    }
    auto c = static_cast<unsigned char>(raw[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\' && escape_backslash) {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7f) {
      escape(c);
    } else if (c >= 0x80) {
      // Text in UTF-8 is shown as such; other octets, C1 and bidirectional controls are
      // escaped like the C0 ones.
      const std::size_t n = showable_sequence_length(raw, i);
      if (n == 0) {
        escape(c);
      } else {
        out.append(raw.substr(i, n));
        i += n - 1;
      }
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string reply_stream::unfinished() const {
  std::string text;
  if (const auto n = replies_.lines_so_far()) {
    text = std::to_string(n) + (n == 1 ? " line" : " lines") + " of a multi-line reply";
  }
  if (lines_.discarding()) {
    if (!text.empty()) text += " and ";
    text += std::to_string(overlong_octets_) + " octets of an over-long line, dropped as they came";
  } else if (!in_.empty()) {
    if (!text.empty()) text += " and ";
    text += "'" + printable(in_) + "' without its line end";
  }
  return text;
}

reply_stream::result reply_stream::next() {
  if (overflowed_) {
    overflowed_ = false;
    replies_.take();
    return {status::malformed,
            {},
            "more than " + std::to_string(max_unread) + " octets of replies arrived unread"};
  }
  for (;;) {
    auto r = lines_.next(in_);
    if (lines_.discarding() || r.st == line_reader::status::too_long)
      overlong_octets_ += r.consumed;
    if (r.st == line_reader::status::need_more) {
      in_.erase(0, r.consumed);
      return {};
    }
    if (r.st == line_reader::status::too_long) {
      in_.erase(0, r.consumed);
      return overlong_ended();
    }
    std::string line(r.line);
    in_.erase(0, r.consumed);
    switch (replies_.feed_line(line)) {
      case reply_reader::status::need_more:
        continue;
      case reply_reader::status::complete:
        return {status::reply, replies_.take(), {}};
      case reply_reader::status::malformed: {
        std::string why = replies_.error();
        replies_.take();
        return {status::malformed, {}, why + ": '" + printable(line) + "'"};
      }
    }
  }
}

// The end of an over-long line came: a malformed reply, unless it was reported while the line
// went on; then only how much was dropped.
reply_stream::result reply_stream::overlong_ended() {
  replies_.take();
  const std::string dropped =
      std::to_string(std::exchange(overlong_octets_, 0)) + " octets up to its line end, dropped";
  const bool reported = std::exchange(overlong_reported_, false);
  if (reported) return {status::dropped, {}, "the over-long reply line ended: " + dropped};
  return {
      status::malformed,
      {},
      "reply line longer than " + std::to_string(lines_.max_line()) + " octets (" + dropped + ")"};
}

std::string reply_stream::report_overlong() {
  overlong_reported_ = true;
  return endless_line(lines_.max_line());
}

std::size_t reply_stream::discard() {
  std::size_t n = in_.size();
  in_.clear();
  replies_.take();
  // Plaintext after it is no part of a line that went on before the TLS handshake.
  lines_ = line_reader(lines_.max_line());
  overlong_reported_ = false;
  overlong_octets_ = 0;
  return n;
}

}  // namespace smtpfault::proto
