// Client side of the reply channel: bytes from the server in, whole typed replies out. Pure,
// no I/O: the caller feeds what it read and asks for the next reply.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "proto/line_reader.hpp"
#include "proto/reply.hpp"

namespace smtpfault::proto {

class reply_stream {
 public:
  // Reply lines longer than max_line octets (CRLF included) are malformed; memory stays bounded
  // by max_line plus what one read adds.
  explicit reply_stream(std::size_t max_line = 64 * 1024) : lines_(max_line) {}

  // Bytes that pile up unread (a script waiting for a close while the server floods) are
  // dropped beyond max_unread; the next reply read is then malformed, saying so.
  static constexpr std::size_t max_unread = 4 * 1024 * 1024;
  void feed(std::string_view bytes) {
    if (in_.size() + bytes.size() > max_unread) {
      overflowed_ = true;
      in_.clear();
      return;
    }
    in_.append(bytes);
  }

  // dropped: the end of an over-long line already reported (report_overlong), which is no
  // reply and no second fault; error says how many octets the line had, all dropped.
  enum class status { need_more, reply, malformed, dropped };
  struct result {
    status st = status::need_more;
    proto::reply reply;  // with status::reply
    std::string error;   // with status::malformed: why, and the offending line (escaped)
  };
  // The next complete reply, if the buffered bytes hold one. After malformed the stream starts
  // afresh at the next line, so a client can report the fault and keep reading.
  result next();

  // Inside a line past max_line whose end has not come yet (an endless line), not yet
  // reported: what a wait that ends now was really waiting for.
  bool overlong_to_report() const { return lines_.discarding() && !overlong_reported_; }
  // Why the reply being read is malformed, said while its line still goes on. The rest of the
  // line is then dropped up to its end, which next() tells as `dropped`, so that the replies
  // after it can be read.
  std::string report_overlong();
  // Bytes received and not yet part of a returned reply.
  std::size_t buffered() const { return in_.size(); }
  // What a close in the middle of a reply cut short, for the transcript: "2 lines of a
  // multi-line reply and '250-SIZE 10' without its line end"; empty between replies.
  std::string unfinished() const;
  // Drops everything buffered (after STARTTLS: plaintext must not be read as TLS replies).
  std::size_t discard();

 private:
  line_reader lines_;
  reply_reader replies_;
  std::string in_;
  result overlong_ended();

  bool overflowed_ = false;
  bool overlong_reported_ = false;
  std::size_t overlong_octets_ = 0;  // of the over-long line being dropped, so far
};

// What a wait that ended inside a line past max_line was waiting for: "a reply line longer
// than 65536 octets, still without its end".
std::string endless_line(std::size_t max_line);

// Lines of a partial reply and unfinished bytes are visible to error messages only as escaped
// text: "250 ok\\r\\n" style, at most `max` octets. A backslash is escaped too, unless the text
// is escaped already (a client step's name: "raw 'QUIT\\r\\n'").
std::string printable(std::string_view raw, std::size_t max = 120, bool escape_backslash = true);

}  // namespace smtpfault::proto
