#include "session/transcript.hpp"

#include <cstdio>
#include <ctime>

#include "proto/utf8.hpp"

namespace smtpfault::session {

transcript::transcript(std::string session_id, std::size_t max_entries, sink live)
    : session_id_(std::move(session_id)), max_entries_(max_entries), live_(std::move(live)) {}

void transcript::add(direction dir, std::string text, std::chrono::system_clock::time_point at) {
  transcript_entry e{at, dir, std::move(text)};
  write_live(e);
  keep(std::move(e));
}

void transcript::keep(transcript_entry e) {
  if (entries_.size() >= max_entries_) {
    ++dropped_;
    return;
  }
  entries_.push_back(std::move(e));
}

void transcript::write_live(const transcript_entry& e) const {
  if (live_) live_(session_id_, e);
}

std::string escape_wire(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    // UTF-8 stays readable; an octet that is not part of it (0xFF, a lone 0x80) is escaped, so
    // a log line or a terminal never gets a broken sequence, and so are the C1 and the
    // bidirectional controls, which a terminal would act on.
    if (c >= 0x80) {
      if (const std::size_t n = proto::showable_sequence_length(raw, i)) {
        out.append(raw.substr(i, n));
        i += n - 1;
      } else {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      }
      continue;
    }
    switch (c) {
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];  // room for any int in every field: no truncation warning
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace smtpfault::session
