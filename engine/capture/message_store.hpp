// Every accepted message, in memory and optionally as files; plus finished session transcripts.
// Thread-safe: sessions on every I/O thread store here.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "session/envelope.hpp"
#include "session/transcript.hpp"

namespace smtpfault::capture {

struct stored_message {
  std::string id;
  session::message msg;
};

struct session_record {
  session::session_facts facts;
  std::vector<session::transcript_entry> entries;
  std::size_t dropped = 0;
};

class message_store {
 public:
  // dir: where <id>.eml and <id>.json go; empty keeps messages in memory only.
  // max_messages / max_sessions bound memory; the oldest are forgotten first (files stay).
  message_store(std::string dir, std::size_t max_messages, std::size_t max_sessions);

  // Checks that dir exists or can be created and is writable; returns an error message.
  std::optional<std::string> prepare();

  // Assigns an id and persists the message before returning: with a directory, the files are
  // written under a temporary name, fsynced and renamed, so a crash never leaves half a message.
  // Returns nullopt when the files could not be written (the client then gets a 451).
  std::optional<std::string> store(session::message&& m);

  void record_session(session_record&& r);

  std::vector<std::shared_ptr<const stored_message>> messages() const;
  std::size_t message_count() const;
  std::vector<std::shared_ptr<const session_record>> sessions() const;

 private:
  bool write_files(const stored_message& m) const;
  std::string next_id();

  std::string dir_;
  std::size_t max_messages_;
  std::size_t max_sessions_;
  std::string id_prefix_;
  mutable std::mutex mu_;
  std::uint64_t seq_ = 0;
  std::deque<std::shared_ptr<const stored_message>> messages_;
  std::deque<std::shared_ptr<const session_record>> sessions_;
};

// The JSON metadata written beside each .eml (envelope, session facts, anomalies).
std::string message_metadata_json(const stored_message& m);

}  // namespace smtpfault::capture
