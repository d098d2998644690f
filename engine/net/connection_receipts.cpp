// Whether a stored message's reply was written. The message is stored before its 250 is queued
// (nothing acknowledged is lost); when the session ends before that reply was written (the
// client left while it was held back, the server stopped, the write failed), the store says
// so, and a test that counts messages can tell the copy its client will send again.
#include "net/connection.hpp"
#include "net/server.hpp"

namespace smtpfault::net {

using sys_clock = std::chrono::system_clock;

void connection::await_reply(std::shared_ptr<const capture::stored_message> message,
                             std::size_t replies) {
  replies_unqueued_ += replies;
  // One whose replies are out takes the new message: no allocation per message.
  const auto sent = io_.sent();
  for (auto& r : receipts_) {
    if (r.replies_left == 0 && r.ends_at <= sent) {
      r = {std::move(message), replies, 0};
      return;
    }
  }
  receipts_.push_back({std::move(message), replies, 0});
}

// The reply now at the end of out_ is the next one a stored message waits for, in the order
// the messages were stored.
void connection::reply_queued() {
  for (auto& r : receipts_) {
    if (r.replies_left == 0) continue;
    --r.replies_left;
    --replies_unqueued_;
    r.ends_at = io_.sent() + out_.size();
    // Its reply goes out with the next write: a client that has it finds it acknowledged.
    if (r.replies_left == 0) r.message->reply_pending.store(false, std::memory_order_relaxed);
    return;
  }
}

void connection::mark_unanswered_messages() {
  for (const auto& r : receipts_) {
    if (r.replies_left == 0 && r.ends_at <= io_.sent()) continue;
    srv_.store_.mark_unacknowledged(*r.message);
    session_.note("message " + r.message->id + " was stored, but its reply was never written",
                  sys_clock::now());
  }
  receipts_.clear();
  replies_unqueued_ = 0;
}

}  // namespace smtpfault::net
