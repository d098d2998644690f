// Every accepted message, in memory and optionally as files; plus finished session transcripts.
// Thread-safe: sessions on every I/O thread store here.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "session/envelope.hpp"
#include "session/transcript.hpp"

namespace smtpfault::capture {

struct stored_message {
  std::string id;
  std::uint64_t number = 0;  // the order of storing, from 1 (message_store::messages_after)
  session::message msg;
  // Set once the session ended before the message's reply (its 250) was written: the client
  // does not know it was taken, and will likely send it again.
  mutable std::atomic<bool> unacknowledged{false};
  // Until the reply is queued for writing: one a scenario holds back (a delay, a sleeping
  // hook) has not reached the client, which may yet leave without it.
  mutable std::atomic<bool> reply_pending{false};
  bool acknowledged() const {
    return !reply_pending.load(std::memory_order_relaxed) &&
           !unacknowledged.load(std::memory_order_relaxed);
  }
};

struct session_record {
  session::session_facts facts;
  std::vector<session::transcript_entry> entries;
  std::size_t dropped = 0;
  bool open = false;  // a snapshot of a session still going on

  // The lines the session wrote, kept and dropped: not the entry that says how many were
  // dropped, which transcript::entries() puts between the first and the last ones kept.
  std::size_t written() const { return entries.size() + dropped - (dropped > 0 ? 1 : 0); }
};

class message_store {
 public:
  // dir: where <id>.eml and <id>.json go; empty keeps messages in memory only.
  // max_messages / max_sessions bound memory; the oldest are forgotten first (files stay).
  message_store(std::string dir, std::size_t max_messages, std::size_t max_sessions);
  // Ids are "<prefix>-000001", ...; the prefix is the start time unless given here (from a
  // seed, so that a replayed run tells its client the same queue ids).
  void use_id_prefix(std::string prefix) { id_prefix_ = std::move(prefix); }
  // Message octets held in memory at most (default 64 MiB).
  void set_max_bytes(std::uint64_t bytes) { max_bytes_ = bytes; }

  // Checks that dir exists or can be created and is writable; returns "DIR: why" when not.
  std::optional<std::string> prepare();

  // Assigns an id and persists the message before returning: with a directory, the files are
  // written under a temporary name, fsynced and renamed, so a crash never leaves half a message.
  // Returns nullopt when the files could not be written (the client then gets a 451).
  // When the budget makes the store forget a message nobody else holds, its body buffer is
  // moved into *spare_body for the caller to read the next message into.
  // Without a message (the files could not be written), *why_not says why, naming the file.
  // reply_pending: the message is shown unacknowledged until its reply is queued (the session
  // clears the flag then); the .json file, written now, holds what is known at the end.
  std::shared_ptr<const stored_message> store(session::message&& m,
                                              std::string* spare_body = nullptr,
                                              std::string* why_not = nullptr,
                                              bool reply_pending = false);

  void record_session(session_record&& r);
  // The message's 250 never reached its client; with a directory its .json is written again.
  void mark_unacknowledged(const stored_message& m);

  std::vector<std::shared_ptr<const stored_message>> messages() const;
  // What a long-poll has not seen yet: the messages stored after number `after`, oldest first,
  // or every one kept (from_start) when the store was cleared since `clears`. A waiter looks
  // at each message once, however many arrive while it waits.
  struct message_news {
    std::vector<std::shared_ptr<const stored_message>> messages;
    std::uint64_t newest = 0;  // the number to pass as `after` next time
    std::uint64_t clears = 0;  // and as `clears`
    bool from_start = false;
  };
  message_news messages_after(std::uint64_t after, std::uint64_t clears) const;
  std::size_t message_count() const;
  // How many messages the store keeps at most (the oldest are forgotten first).
  std::size_t max_messages() const { return max_messages_; }
  std::vector<std::shared_ptr<const session_record>> sessions() const;

  std::shared_ptr<const stored_message> find_message(std::string_view id) const;
  std::shared_ptr<const session_record> find_session(std::string_view id) const;
  // Forget what is held in memory (files in the directory stay).
  void clear_messages();
  void clear_sessions();
  // Messages stored since start, including forgotten ones (for metrics).
  std::uint64_t stored_total() const;
  // Whether max_sessions made the store forget a session that started at or after t: then
  // what sessions() returns from t on is not all there was.
  bool forgot_a_session_started_since(std::chrono::system_clock::time_point t) const;

  // Called (on the storing thread, without the store's lock) after every stored message, so a
  // long-poll can wake up instead of polling. The callback must be quick and must not call
  // subscribe() or unsubscribe(). unsubscribe() returns once no call is in flight.
  using listener = std::function<void()>;
  std::uint64_t subscribe(listener l);
  void unsubscribe(std::uint64_t token);

 private:
  void notify();

  std::string write_files(const stored_message& m) const;  // "" or what went wrong
  std::string next_id();

  std::string dir_;
  std::size_t max_messages_;
  std::uint64_t max_bytes_ = 64ull * 1024 * 1024;
  std::uint64_t held_bytes_ = 0;
  std::size_t max_sessions_;
  std::string id_prefix_;
  mutable std::mutex mu_;
  std::uint64_t seq_ = 0;
  std::uint64_t stored_number_ = 0;  // of the newest message kept, in the order of messages_
  std::uint64_t clears_ = 0;
  std::deque<std::shared_ptr<stored_message>> messages_;  // not const: bodies are handed back
  std::deque<std::shared_ptr<const session_record>> sessions_;
  // The latest start of a session forgotten to max_sessions (none yet: the epoch).
  std::chrono::system_clock::time_point newest_forgotten_start_{};
  std::uint64_t stored_total_ = 0;
  std::mutex listeners_mu_;  // held while listeners run
  std::uint64_t next_token_ = 0;
  std::vector<std::pair<std::uint64_t, listener>> listeners_;
};

// The JSON metadata of a message: envelope, session facts, anomalies.
boost::json::object message_metadata(const stored_message& m);

// The JSON metadata written beside each .eml (envelope, session facts, anomalies).
std::string message_metadata_json(const stored_message& m);

}  // namespace smtpfault::capture
