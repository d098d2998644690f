#include "net/transcript_log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <boost/json/value.hpp>

#include "json/json_text.hpp"

namespace smtpfault::net {

namespace {

thread_local bool flushes_deferred = false;

const char* direction_tag(session::direction d) {
  switch (d) {
    case session::direction::client:
      return "C";
    case session::direction::server:
      return "S";
    case session::direction::event:
      return "*";
  }
  return "?";
}

}  // namespace

void transcript_log::note_if_output_lost() {
  if (output_lost_.load(std::memory_order_relaxed) || !std::ferror(stdout)) return;
  output_lost_.store(true, std::memory_order_relaxed);
  std::fprintf(stderr,
               "smtpfault: cannot write the log to standard output (%s); serving goes on "
               "without it\n",
               std::strerror(errno));
}

void transcript_log::write(std::string_view session_id, const session::transcript_entry& e) {
  if (format_ == log_format::none || output_lost_.load(std::memory_order_relaxed)) return;
  std::string line;
  if (format_ == log_format::json) {
    boost::json::object o{{"ts", session::format_timestamp(e.at)},
                          {"session", session_id},
                          {"dir", direction_tag(e.dir)},
                          {"text", e.text}};
    // Boost.JSON escapes control characters, so wire bytes stay inside the string.
    line = json::json_text(o);
  } else {
    line = session::format_timestamp(e.at) + " " + std::string(session_id) + " " +
           direction_tag(e.dir) + ": " + session::escape_wire(e.text);
  }
  line += '\n';
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), stdout);
  if (flushes_deferred) {
    pending_.store(true, std::memory_order_relaxed);
  } else {
    std::fflush(stdout);
    note_if_output_lost();
  }
}

void transcript_log::defer_flushes_on_this_thread() {
  flushes_deferred = true;
}

// A thread always sees its own pending_ store, so each I/O thread's lines leave when its own
// handler returns at the latest; another thread's flush may take them out sooner.
void transcript_log::flush_pending() {
  if (!pending_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(mu_);
  pending_.store(false, std::memory_order_relaxed);
  std::fflush(stdout);
  note_if_output_lost();
}

void transcript_log::info(std::string_view text) {
  // Start-up and shutdown lines are printed even without transcripts: they say where to connect.
  std::string line;
  if (format_ == log_format::json) {
    // The banner's indentation lays out a terminal, not a JSON field.
    text.remove_prefix(std::min(text.find_first_not_of(' '), text.size()));
    line = json::json_text(boost::json::object{
        {"ts", session::format_timestamp(std::chrono::system_clock::now())}, {"info", text}});
  } else {
    line = std::string(text);
  }
  line += '\n';
  std::lock_guard lock(mu_);
  if (output_lost_.load(std::memory_order_relaxed)) return;
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
  note_if_output_lost();
}

}  // namespace smtpfault::net
