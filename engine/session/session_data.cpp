// Message transfer: DATA (RFC 5321 4.1.1.4, dot-stuffed) and BDAT (RFC 3030, counted chunks),
// the end-of-data decision and the replies once the driver has stored the message.
#include <algorithm>
#include <string>
#include <utility>

#include "proto/body_scan.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session {

void server_session::do_data(const proto::command& cmd) {
  (void)cmd;
  if (!in_transaction_) return error_reply(503, "5.5.1", "Need MAIL command");
  if (env_.recipients.empty()) return error_reply(503, "5.5.1", "Need RCPT command");
  // RFC 3030 2: not mixed in one transaction, even after a BDAT 0.
  if (bdat_.total() > 0 || pending_.via_bdat) {
    return error_reply(503, "5.5.1", "DATA not allowed after BDAT");
  }
  data_.emplace(opts_.limits.text_line, opts_.limits.max_message_size);
  start_message(false);
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
  set_mode(mode::data);
}

void server_session::start_message(bool via_bdat) {
  pending_ = message{};
  pending_.data = std::move(spare_body_);
  pending_.data.clear();
  spare_body_ = std::string();
  // A load test sends one size over and over: room for the last message's size saves the
  // half-dozen reallocations (and copies) of growing a body from empty.
  pending_.data.reserve(std::min(last_body_size_, body_reserve_limit));
  pending_.via_bdat = via_bdat;
}

void server_session::note_data_anomalies(clock::time_point now) {
  note_anomalies(data_->anomalies(), now);
}

void server_session::note_anomalies(const std::vector<proto::anomaly>& found,
                                    clock::time_point now) {
  for (const auto& a : found)
    note_anomaly(a, "", now);
}

void server_session::note_anomaly(const proto::anomaly& a, const char* where,
                                  clock::time_point now) {
  note(std::string("anomaly: ") + proto::anomaly_name(a.kind) + where + " at offset " +
           std::to_string(a.offset),
       now);
}

void server_session::on_client_closed(const std::string& why, clock::time_point now) {
  // Gone in the middle of the message text: how far it got, and what was odd in it, is what a
  // test of an aborting client needs to see.
  if (mode_ == mode::data && data_) {
    note_data_anomalies(now);
    note("client closed the connection (" + why + ") in the message data, after " +
             std::to_string(pending_.data.size()) + " octets",
         now);
    return;
  }
  note("client closed the connection (" + why + ")", now);
}

std::size_t server_session::receive_data(std::string_view input) {
  auto r = data_->feed(input, pending_.data);
  if (r.done) {
    text_behind_data_ = r.consumed < input.size();
    note_data_anomalies(now_);
    if (data_->size_exceeded()) {
      set_mode(mode::command);
      refuse_message(too_big());
    } else if (data_->line_too_long()) {
      set_mode(mode::command);
      refuse_message(line_too_long());
    } else {
      pending_.anomalies = data_->anomalies();
      finish_message();
    }
    data_.reset();
  }
  return r.consumed;
}

proto::reply server_session::too_big() const {
  return {552, "5.3.4", "Message size exceeds fixed maximum message size"};
}

proto::reply server_session::line_too_long() const {
  return {500, "5.5.2",
          "Line too long (limit " + std::to_string(opts_.limits.text_line) + " octets)"};
}

// The message's end refused: LMTP owes a reply per accepted recipient there too (RFC 2033
// 4.2), or the client waits for the rest or takes the next command's reply for one of them.
// One error towards the limit, however many replies.
void server_session::refuse_message(proto::reply r) {
  note_declaration_anomalies(env_);
  pending_rcpts_ = env_.recipients.size();
  reply_for_each_recipient(std::move(r));
  reset_transaction();
  count_error();
}

void server_session::finish_message() {
  last_body_size_ = pending_.data.size();
  // The store keeps the buffer as it is: a small message read into room reserved (or
  // recycled) for a far bigger one must not hold that room for as long as it is kept.
  if (pending_.data.capacity() > 2 * last_body_size_ + body_reserve_slack) {
    pending_.data.shrink_to_fit();
  }
  pending_.env = std::move(env_);
  env_ = envelope{};
  for (const auto& a : note_declaration_anomalies(pending_.env)) {
    if (pending_.anomalies.size() < proto::data_reader::max_anomalies)
      pending_.anomalies.push_back(a);
  }
  ++envelope_version_;
  pending_rcpts_ = pending_.env.recipients.size();  // the driver moves the message away
  pending_.facts = facts_;
  pending_.received = now_;
  log_.add(direction::event,
           "message of " + std::to_string(pending_.data.size()) + " octets, " +
               std::to_string(pending_.env.recipients.size()) + " recipient(s)",
           now_);
  if (wants(hook::message)) return consult(hook::message);
  set_mode(mode::storing);
  actions_.emplace_back(deliver_message{});
}

// An 8-bit body counts as declared with BODY=8BITMIME, and with SMTPUTF8, which implies it.
// Noted for a message refused at its end too (too big, a line too long): what the client sent
// is the same, whatever became of it.
std::vector<proto::anomaly> server_session::note_declaration_anomalies(const envelope& env) {
  const bool declared = env.smtputf8 || env.body_8bitmime;
  auto found = proto::scan_declarations(pending_.data, declared, pending_.via_bdat);
  for (const auto& a : found)
    note_anomaly(a, "", now_);
  return found;
}

void server_session::on_stored(std::optional<std::string> message_id, clock::time_point now) {
  now_ = now;
  if (message_id) ++messages_accepted_;
  // Nothing acknowledged may be lost: the reply a scenario chose (a 250 of its own) does not
  // replace the 451 of a store that failed. How it goes out (a delay, an ending) still holds.
  if (!message_id && ((override_ && (override_->reply || override_->raw ||
                                     override_->malformed != fault::malformed_kind::none)) ||
                      !each_recipient_.empty())) {
    if (override_) {
      auto paced = std::make_shared<fault::action>(*override_);
      paced->reply.reset();
      paced->raw.reset();
      paced->malformed = fault::malformed_kind::none;
      override_ = std::move(paced);
    }
    each_recipient_.clear();
    note("the scenario's reply is not sent: the message could not be stored", now);
  }
  reply_for_each_recipient(
      message_id ? proto::reply(250, "2.0.0", "Ok: queued as " + *message_id)
                 : proto::reply(451, "4.3.0",
                                "Requested action aborted: local error in storing the message"));
  pending_ = message{};
  reset_transaction();
  set_mode(mode::command);
}

// LMTP answers the data once per recipient (RFC 2033 4.2), so a fault decided for the message
// answers for each of them; an ending waits for the last answer.
void server_session::reply_for_each_recipient(proto::reply r) {
  const std::size_t n = replies_to_message();
  // smtp.each_recipient: a reply of its own for some recipients, the normal one for the rest.
  const auto each = std::exchange(each_recipient_, {});
  // The usual case, SMTP: one reply, the override (if any) already in place, nothing copied.
  if (n == 1 && each.empty()) return reply(std::move(r));
  auto fault = std::move(override_);
  override_.reset();
  answering_each_recipient_ = true;
  closing_after_each_recipient_ = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (fault && i + 1 < n && fault->end != fault::ending::none) {
      auto one = std::make_shared<fault::action>(*fault);
      one->end = fault::ending::none;
      override_ = std::move(one);
    } else {
      override_ = fault;
    }
    reply(i < each.size() && each[i] ? *each[i] : r);
    if (mode_ == mode::closed) break;  // an ending the fault asked for on this reply
  }
  answering_each_recipient_ = false;
  // RFC 5321 3.8: 421 means the server is closing; a scenario's 421 for one recipient ends
  // the session once every recipient has its reply.
  if (closing_after_each_recipient_ && mode_ != mode::closed) close();
}

bool server_session::skip_bdat_chunk(const proto::command& cmd, bool answered) {
  auto args = proto::parse_bdat_args(cmd.argument);
  if (!args) return false;
  // A refused chunk is read and dropped; it must not count towards a later message.
  bdat_rejected_ = true;
  bdat_answered_ = answered;
  skip_.emplace(0);
  skip_->start_chunk(args->size);
  last_chunk_size_ = args->size;
  set_mode(mode::bdat_chunk);
  if (args->size == 0) receive_bdat({});
  return true;
}

void server_session::do_bdat(const proto::command& cmd) {
  auto args = proto::parse_bdat_args(cmd.argument);
  if (!args) {
    // Without a size the chunk cannot be skipped: its octets would be read as commands, so the
    // session ends. RFC 5321 3.8 lets a server close only after a 421, which may follow the
    // reply to the command.
    error_reply(501, "5.5.4", "Syntax: BDAT <size> [LAST]");
    return final_reply(421, "4.5.0", "Malformed BDAT, closing connection");
  }
  if (greeted_ && !extended_) {
    // RFC 3030 2: BDAT only where CHUNKING was offered, and HELO offers nothing. The chunk's
    // size is known, so it is read and dropped rather than taken for commands.
    skip_bdat_chunk(cmd, true);
    return error_reply(503, "5.5.1", "BDAT needs EHLO: CHUNKING was not offered after HELO");
  }
  if (!in_transaction_ || env_.recipients.empty()) {
    skip_bdat_chunk(cmd, false);
    return;
  }
  bdat_rejected_ = false;
  if (bdat_.total() == 0 && !pending_.via_bdat) start_message(true);
  bdat_last_ = args->last;
  last_chunk_size_ = args->size;
  bdat_.start_chunk(args->size);
  set_mode(mode::bdat_chunk);
  if (args->size == 0) receive_bdat({});
}

std::size_t server_session::receive_bdat(std::string_view input) {
  if (bdat_rejected_) {
    std::string discard;
    std::size_t used = skip_->feed(input, discard);
    if (!skip_->chunk_done()) return used;
    note_if_pipelined(used < input.size());
    set_mode(mode::command);
    skip_.reset();
    bdat_rejected_ = false;
    if (!std::exchange(bdat_answered_, false)) {
      error_reply(503, "5.5.1", in_transaction_ ? "Need RCPT command" : "Need MAIL command");
    }
    return used;
  }
  std::size_t used = bdat_.feed(input, pending_.data);
  if (!bdat_.chunk_done()) return used;
  note_if_pipelined(used < input.size());
  set_mode(mode::command);
  if (bdat_.size_exceeded()) {
    // Only the last chunk's reply is the message's; an earlier one answers that chunk alone.
    if (bdat_last_) {
      refuse_message(too_big());
    } else {
      error_reply(too_big());
      reset_transaction();
    }
    return used;
  }
  if (bdat_last_) {
    // The whole body is here: what DATA notes as it reads (bare CR and LF, NUL, long lines),
    // and the same refusal for a line over the limit.
    auto scan = proto::scan_body(pending_.data, opts_.limits.text_line);
    note_anomalies(scan.anomalies, now_);
    if (scan.line_too_long) {
      refuse_message(line_too_long());
      return used;
    }
    pending_.anomalies = std::move(scan.anomalies);
  }
  if (wants(hook::bdat)) {
    consult(hook::bdat);
    return used;
  }
  apply_bdat(fault::action{});
  return used;
}

}  // namespace smtpfault::session
