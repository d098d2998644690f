// Scenario hooks for server_session: the "filter" step between checking a command and carrying
// it out. A hook's decision is a fault::action; an empty one keeps the default behaviour.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "proto/ascii.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session {

namespace {

const char* const hook_names[] = {"connect", "helo", "ehlo", "starttls", "auth",    "mail",
                                  "rcpt",    "data", "bdat", "message",  "command", "disconnect"};

// Which specific hook follows the command hook for a verb, if any.
std::optional<hook> hook_for(proto::verb v) {
  switch (v) {
    case proto::verb::helo:
      return hook::helo;
    case proto::verb::ehlo:
    case proto::verb::lhlo:
      return hook::ehlo;
    case proto::verb::mail:
      return hook::mail;
    case proto::verb::rcpt:
      return hook::rcpt;
    case proto::verb::data:
      return hook::data;
    case proto::verb::starttls:
      return hook::starttls;
    default:
      return std::nullopt;
  }
}

}  // namespace

const char* hook_name(hook h) {
  return hook_names[static_cast<std::size_t>(h)];
}

void server_session::consult(hook h) {
  consulting_ = h;
  set_mode(mode::consulting);
  actions_.emplace_back(consult_hook{h});
}

void server_session::after_command_hook(proto::command&& cmd) {
  auto h = hook_for(cmd.kind);
  if (h && wants(*h)) {
    pending_cmd_ = std::move(cmd);
    return consult(*h);
  }
  if (command_shaping_) return apply_to_command(cmd, {});
  run_default(cmd);
}

void server_session::on_decision(fault::action&& a, clock::time_point now) {
  now_ = now;
  if (mode_ != mode::consulting) return;
  mode_ = mode::command;
  if (!a.is_default()) note("fault: " + (a.name.empty() ? std::string("action") : a.name), now);
  if (a.unsolicited) actions_.emplace_back(schedule_unsolicited{*a.unsolicited});
  if (!a.each_recipient.empty() && consulting_ != hook::message) {
    // Only the end of a message has a reply per recipient (RFC 2033 4.2).
    note(std::string("each_recipient is for on_message: on_") + hook_name(consulting_) +
             " ignores it",
         now);
    a.each_recipient.clear();
  }
  if (a.loses_message && consulting_ != hook::message) {
    // Only a message can be accepted and then lost; elsewhere it is a close without a reply.
    note(std::string("smtp.lose is for on_message: on_") + hook_name(consulting_) +
             " closes the connection without a reply instead (smtp.close)",
         now);
  }
  switch (consulting_) {
    case hook::connect:
      return apply_greeting(std::move(a));
    case hook::message:
      return apply_message(std::move(a));
    case hook::auth:
      set_mode(mode::auth_response);
      return apply_auth(std::move(a));
    case hook::bdat:
      return apply_bdat(std::move(a));
    case hook::command: {
      auto cmd = std::move(pending_cmd_);
      if (a.leaves_the_reply()) {
        // smtp.delay(1) from on_command shapes the reply that on_rcpt (or the server) chooses:
        // the specific hook still runs.
        keep_waiting_faults(a, cmd.kind);
        if (a.shapes_the_reply()) command_shaping_ = std::make_unique<fault::action>(std::move(a));
        return after_command_hook(std::move(cmd));
      }
      return apply_to_command(cmd, std::move(a));
    }
    default:
      return apply_to_command(pending_cmd_, std::move(a));
  }
}

// Without a reply, an ending means: close, reset or hang right away, without answering.
bool server_session::apply_ending_only(const fault::action& a) {
  if (a.reply || a.raw || a.end == fault::ending::none ||
      a.end == fault::ending::close_after_reply) {
    return false;
  }
  if (a.end == fault::ending::hang) {
    set_mode(mode::hung);
    actions_.emplace_back(close_connection{fault::ending::hang});
  } else {
    close(a.end, a.delay);  // smtp.close():delay(5): the close itself comes late
  }
  return true;
}

void server_session::hide_extensions(const fault::action& a) {
  if (a.extensions) {
    ehlo_keywords_ = a.extensions;
    // Keywords left out of an explicit list are off for the session.
    for (const auto& [name, ext] : extension_keywords) {
      bool listed = std::any_of(a.extensions->begin(), a.extensions->end(),
                                [&, e = ext](const auto& k) { return extension_named(k) == e; });
      if (!listed) opts_.extensions.remove(ext);
    }
    // "SIZE 100" advertises a limit: the session keeps to it, within the configured one (a
    // larger number is a server that promises more than it takes, a fault of its own).
    for (const auto& line : *a.extensions) {
      std::uint64_t size = 0;
      if (!proto::istarts_with(line, "SIZE ")) continue;
      const auto digits = std::string_view(line).substr(5);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
      if (ec != std::errc{} || end != digits.data() + digits.size() || size == 0) continue;
      auto& limit = opts_.limits.max_message_size;
      limit = limit == 0 ? size : std::min<std::uint64_t>(limit, size);
    }
  }
  for (const auto& h : a.hide) {
    if (auto e = hideable_named(h)) opts_.extensions.remove(*e);
  }
}

// Faults that wait for their command (EHLO keywords, an AUTH challenge, a STARTTLS fault), kept
// for the session. Said in the transcript when made before their command, so a scenario
// returning one from another hook is not left wondering why nothing happened yet; at the
// greeting (answering is nullopt) the EHLO keywords need no such word.
void server_session::keep_waiting_faults(const fault::action& a,
                                         std::optional<proto::verb> answering) {
  const bool extension_fault = !a.hide.empty() || a.extensions;
  if (extension_fault && answering && *answering != proto::verb::ehlo &&
      *answering != proto::verb::helo) {
    note("the EHLO keywords change from the next EHLO on", now_);
  }
  hide_extensions(a);
  if (a.auth_challenge) {
    challenge_override_ = a.auth_challenge;
    if (answering != proto::verb::auth) note("the AUTH challenge waits for the next AUTH", now_);
  }
  if (a.tls_mode != fault::starttls_mode::normal ||
      a.certificate != fault::certificate_kind::normal) {
    tls_override_ = start_tls{a.tls_mode, a.certificate, a.inject};
    if (answering != proto::verb::starttls) {
      note("the STARTTLS fault waits for the next STARTTLS", now_);
    }
  }
}

void server_session::apply_to_command(const proto::command& cmd, fault::action a) {
  // on_command's delay, trickle or split, for whatever reply the specific hook chose, unless
  // that hook shapes its reply itself.
  if (auto shaping = std::exchange(command_shaping_, nullptr); shaping && !a.shapes_the_reply()) {
    a.shape_like(*shaping);
  }
  if (apply_ending_only(a)) return;
  keep_waiting_faults(a, cmd.kind);
  const bool rejects = a.rejects() || (a.raw && !a.reply);
  const bool needs_reply_slot = a.reply || a.raw || a.malformed != fault::malformed_kind::none ||
                                a.delay.count() || a.trickle_bytes || !a.split_at.empty() ||
                                a.end != fault::ending::none;
  if (needs_reply_slot) override_ = std::make_shared<fault::action>(std::move(a));
  if (rejects) {
    // The command is refused: no state change (but for a BDAT's), just the scenario's reply.
    reply(proto::reply(override_->reply ? override_->reply->code : 500, "", ""));
    if (cmd.kind == proto::verb::bdat && mode_ == mode::command) refused_bdat(cmd);
    return;
  }
  if (cmd.kind == proto::verb::bdat) {
    // A BDAT is answered after its chunk: a reply the command's fault gave (a 250 of its own, a
    // delay) waits for that, and answers it only if the server takes the chunk (apply_bdat);
    // a refusal of the server's (503 outside a transaction, 552 over the size) goes out as it
    // is, since a 2xx there would acknowledge what was not taken.
    chunk_reply_ = std::move(override_);
    run_default(cmd);
    if (mode_ != mode::bdat_chunk) chunk_reply_.reset();  // answered at once, or taken already
    return;
  }
  run_default(cmd);
  override_.reset();
}

// A refused BDAT still has its chunk on the way: read as commands, it would smuggle them in.
// RFC 3030 2: the refusal fails the transaction, so chunks pipelined after it get 503 and no
// message is stored without the refused one. Without a size the chunk cannot be skipped, and
// the session ends, as for the server's own refusal.
void server_session::refused_bdat(const proto::command& cmd) {
  if (in_transaction_) reset_transaction();
  if (!skip_bdat_chunk(cmd, true)) final_reply(421, "4.5.0", "Malformed BDAT, closing connection");
}

void server_session::apply_greeting(fault::action a) {
  if (apply_ending_only(a)) return;
  keep_waiting_faults(a, std::nullopt);
  const int code = a.reply ? a.reply->code : 220;
  override_ = std::make_shared<fault::action>(std::move(a));
  greet();
  // RFC 5321 3.1: after a 554 greeting the server waits for QUIT; 521 (RFC 7504) closes.
  if (code == 554) refusing_ = true;
  if (code == 521 && mode_ != mode::closed) close();
}

void server_session::apply_message(fault::action a) {
  if (!a.each_recipient.empty()) {
    if (!opts_.lmtp) {
      note("each_recipient changes nothing over SMTP (one reply answers for every recipient)",
           now_);
    } else {
      each_recipient_ = std::move(a.each_recipient);
      if (each_recipient_.size() > pending_rcpts_) {
        note("each_recipient gave " + std::to_string(each_recipient_.size()) + " replies for " +
                 std::to_string(pending_rcpts_) + " recipient(s): the extra ones are not sent",
             now_);
      }
    }
    a.each_recipient.clear();
  }
  if (apply_ending_only(a)) {
    // Accept then lose: the client never hears back, and nothing is stored.
    each_recipient_.clear();
    pending_ = message{};
    return;
  }
  // Refused for every recipient: a reply of the fault's, or smtp.each_recipient refusing all.
  bool refused = a.rejects() || (a.raw && !a.reply);
  if (!each_recipient_.empty()) {
    refused = each_recipient_.size() >= pending_rcpts_;
    for (std::size_t i = 0; i < std::min(each_recipient_.size(), pending_rcpts_); ++i)
      refused = refused && each_recipient_[i] && !each_recipient_[i]->positive();
  }
  if (!a.is_default()) override_ = std::make_shared<fault::action>(std::move(a));
  if (refused) {
    reply_for_each_recipient(proto::reply(500, "", ""));
    pending_ = message{};
    reset_transaction();
    return;
  }
  // A recipient refused after the data did not get the message: the store lists those who did.
  if (!each_recipient_.empty()) {
    std::vector<recipient> got;
    for (std::size_t i = 0; i < pending_.env.recipients.size(); ++i) {
      const bool refused_here =
          i < each_recipient_.size() && each_recipient_[i] && !each_recipient_[i]->positive();
      if (!refused_here) got.push_back(std::move(pending_.env.recipients[i]));
    }
    pending_.env.recipients = std::move(got);
  }
  set_mode(mode::storing);
  actions_.emplace_back(deliver_message{});
}

void server_session::apply_auth(fault::action a) {
  if (a.is_default()) return check_credentials();
  set_mode(mode::command);
  if (apply_ending_only(a)) return;
  const bool ok = a.reply && a.reply->code / 100 == 2;
  override_ = std::make_shared<fault::action>(std::move(a));
  if (!ok) return reply(proto::reply(535, "", ""));
  auth_finish(auth_cred_, true);
}

void server_session::apply_bdat(fault::action a) {
  // on_bdat's own decision wins over one its command was given.
  auto for_the_command = std::exchange(chunk_reply_, nullptr);
  if (apply_ending_only(a)) {
    if (bdat_last_) pending_ = message{};
    return;
  }
  if (a.rejects()) {
    override_ = std::make_shared<fault::action>(std::move(a));
    reply(proto::reply(500, "", ""));
    pending_ = message{};
    reset_transaction();
    return;
  }
  if (!a.is_default()) {
    override_ = std::make_shared<fault::action>(std::move(a));
  } else if (for_the_command) {
    override_ = std::move(for_the_command);
  }
  if (!bdat_last_) {
    reply(250, "2.0.0", std::to_string(bdat_.total()) + " octets received");
    return;
  }
  finish_message();
}

bool server_session::on_unsolicited(const fault::unsolicited_reply& u, clock::time_point now) {
  now_ = now;
  // A client that stalls inside a message or an AUTH exchange gets one that closes there and
  // then, as from a server that gave up on it (the message is not kept: it got no 250). One
  // that keeps the session waits for a silence between commands: read as the answer to the
  // message or the exchange, it would put the client out of step.
  const bool inside =
      mode_ == mode::data || mode_ == mode::bdat_chunk || mode_ == mode::auth_response;
  if (inside && !u.close) return false;
  if (mode_ != mode::command && !inside) return true;
  if (inside) {
    note(std::string("unsolicited reply inside ") +
             (mode_ == mode::auth_response ? "the AUTH exchange" : "the message text"),
         now);
  }
  override_ = std::make_shared<fault::action>();
  override_->name = "unsolicited reply";
  override_->reply = u.reply;
  if (u.close) override_->end = fault::ending::close_after_reply;
  reply(u.reply);
  return true;
}

}  // namespace smtpfault::session
