// Whether a stored message's reply reached the client. The message is stored before its 250
// is queued (nothing acknowledged is lost); when the session ends before that reply was written
// (the client left while it was held back, the server stopped, the write failed), the store
// says so, and a test that counts messages can tell the copy its client will send again.
#include "net/connection.hpp"
#include "net/server.hpp"

namespace smtpfault::net {

using sys_clock = std::chrono::system_clock;

void connection::await_reply(const std::string& message_id) {
  // One whose reply is out takes the new id, and keeps the room its string has: on a reused
  // connection, no allocation per message.
  const auto sent = io_.sent();
  for (auto& [id, ends_at] : awaiting_reply_) {
    if (ends_at != 0 && ends_at <= sent) {
      id = message_id;
      ends_at = 0;
      return;
    }
  }
  awaiting_reply_.emplace_back(message_id, 0);
}

// The reply now at the end of out_ answers the messages stored before it (over LMTP, the first
// of its replies).
void connection::reply_queued() {
  for (auto& a : awaiting_reply_)
    if (a.second == 0) a.second = io_.sent() + out_.size();
}

void connection::mark_unanswered_messages() {
  for (const auto& [id, ends_at] : awaiting_reply_) {
    if (ends_at != 0 && ends_at <= io_.sent()) continue;
    srv_.store_.mark_unacknowledged(id);
    session_.note("message " + id + " was stored, but its reply never reached the client",
                  sys_clock::now());
  }
  awaiting_reply_.clear();
}

}  // namespace smtpfault::net
