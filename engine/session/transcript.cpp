#include "session/transcript.hpp"

#include <cstdio>
#include <ctime>
#include <string>
#include <utility>

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
  if (entries_.size() < head_size()) {
    entries_.push_back(std::move(e));
  } else if (latest_.size() < max_entries_ / 2) {
    latest_.push_back(std::move(e));
  } else if (!latest_.empty()) {
    latest_[latest_next_] = std::move(e);
    latest_next_ = (latest_next_ + 1) % latest_.size();
    ++dropped_;
  } else {
    ++dropped_;
  }
}

std::vector<transcript_entry> transcript::joined(std::vector<transcript_entry> head,
                                                 std::vector<transcript_entry> latest,
                                                 std::size_t next, std::size_t dropped) {
  const std::size_t kept_first = head.size();
  head.reserve(head.size() + latest.size() + 1);
  if (dropped > 0) {
    head.push_back({latest[next].at, direction::event,
                    std::to_string(dropped) + " transcript entries dropped here (kept: the first " +
                        std::to_string(kept_first) + " and the last " +
                        std::to_string(latest.size()) + ")"});
  }
  for (std::size_t i = 0; i < latest.size(); ++i)
    head.push_back(std::move(latest[(next + i) % latest.size()]));
  return head;
}

std::vector<transcript_entry> transcript::entries() const {
  if (latest_.empty()) return entries_;
  return joined(entries_, latest_, latest_next_, dropped_);
}

std::vector<transcript_entry> transcript::take_entries() {
  if (latest_.empty()) return std::move(entries_);
  auto out = joined(std::move(entries_), std::move(latest_), latest_next_, dropped_);
  entries_.clear();
  latest_.clear();
  return out;
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
