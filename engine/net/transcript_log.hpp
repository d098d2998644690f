// Writes transcript lines as they happen: readable text or JSON lines. Wire text is escaped so
// CR, LF and NUL from a client can never forge a log line.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "session/transcript.hpp"

namespace smtpfault::net {

enum class log_format { text, json, none };

class transcript_log {
 public:
  explicit transcript_log(log_format f) : format_(f) {}

  void write(std::string_view session_id, const session::transcript_entry& e);
  // A line that is not part of a session (start-up, shutdown).
  void info(std::string_view text);
  bool enabled() const { return format_ != log_format::none; }

 private:
  log_format format_;
  std::mutex mu_;
};

}  // namespace smtpfault::net
