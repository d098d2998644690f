// Writes transcript lines as they happen: readable text or JSON lines. Wire text is escaped so
// CR, LF and NUL from a client can never forge a log line.
#pragma once

#include <atomic>
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

  // After this call, write() on the calling thread leaves its lines in stdout's buffer until
  // flush_pending(). The I/O threads flush once a handler returns: a pipelined batch of
  // commands then costs one write(2), not two per command. Other threads flush every line.
  static void defer_flushes_on_this_thread();
  void flush_pending();

 private:
  // Called with mu_ held, after stdout was flushed: a reader that went away (`serve | head`)
  // is said once on stderr, and no more lines are made for it.
  void note_if_output_lost();

  log_format format_;
  std::mutex mu_;
  std::atomic<bool> pending_{false};
  std::atomic<bool> output_lost_{false};
};

}  // namespace smtpfault::net
