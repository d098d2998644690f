// What happened in a session, in order: commands, replies and events, each with a timestamp.
// Wire text is kept raw here; escaping happens when it is written out.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpfault::session {

enum class direction { client, server, event };

// What the transcript shows for a secret (an AUTH exchange's line, an initial response).
inline constexpr std::string_view masked_secret = "****";

struct transcript_entry {
  std::chrono::system_clock::time_point at;
  direction dir;
  std::string text;  // one line without CRLF, or an event description
};

class transcript {
 public:
  using sink = std::function<void(std::string_view session_id, const transcript_entry&)>;

  // max_entries bounds memory for sessions that never end: past it, the first half and the
  // latest entries are kept (how a session ended is what one looks for), and the count of the
  // ones dropped between them is noted.
  transcript(std::string session_id, std::size_t max_entries, sink live = {});

  void add(direction dir, std::string text, std::chrono::system_clock::time_point at);
  // Keeps an entry without writing it to the live log: for the last entry of a session, logged
  // with write_live() once the finished session is visible elsewhere (the API's store).
  void keep(transcript_entry e);
  void write_live(const transcript_entry& e) const;
  // In order; where entries were dropped, an event says how many.
  std::vector<transcript_entry> entries() const;
  // Hands the entries over (the session is over): no copy of every line.
  std::vector<transcript_entry> take_entries();
  std::size_t dropped() const { return dropped_; }
  const std::string& session_id() const { return session_id_; }

 private:
  std::string session_id_;
  std::size_t max_entries_;
  std::size_t dropped_ = 0;
  std::vector<transcript_entry> entries_;  // the first ones, up to half of max_entries
  std::vector<transcript_entry> latest_;   // then the latest ones, a ring
  std::size_t latest_next_ = 0;            // the oldest of latest_ once it is full
  sink live_;

  std::size_t head_size() const { return max_entries_ - max_entries_ / 2; }
  // The head, a note of the gap, and the ring from its oldest entry: by value, so that
  // take_entries() moves them and entries() copies.
  static std::vector<transcript_entry> joined(std::vector<transcript_entry> head,
                                              std::vector<transcript_entry> latest,
                                              std::size_t next, std::size_t dropped);
};

// Escapes CR, LF, NUL, other control octets, backslash and octets that are not UTF-8, so wire
// data can never forge log lines or put broken sequences on a terminal.
std::string escape_wire(std::string_view raw);

// ISO 8601 UTC with milliseconds: "2026-11-29T06:52:23.123Z".
std::string format_timestamp(std::chrono::system_clock::time_point t);

}  // namespace smtpfault::session
