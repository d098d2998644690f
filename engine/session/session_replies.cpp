// Replies as a session gives them: a scenario's in place of the server's own, enhanced codes
// only where offered, the transcript's lines, and the count of errors that ends a session.
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "fault/wire.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session {

void server_session::note(std::string event, clock::time_point now) {
  log_.add(direction::event, std::move(event), now);
}

void server_session::reply(int code, const char* enhanced, std::string text) {
  reply(proto::reply(code, enhanced, std::move(text)));
}

void server_session::reply(proto::reply r) {
  std::shared_ptr<const fault::action> fault;
  if (override_) {
    if (override_->reply) {
      // A scenario may say yes where the server said no; the command still did nothing (no
      // recipient added, no transaction begun), and the transcript says so.
      if (override_->reply->code < 400 && r.code >= 400) {
        note("the scenario's " + std::to_string(override_->reply->code) +
                 " replaces the server's own refusal (" + std::to_string(r.code) +
                 (r.lines.empty() || r.lines.front().empty() ? std::string()
                                                             : " " + r.lines.front()) +
                 "): the command changed nothing",
             now_);
      }
      r = *override_->reply;
    }
    fault = std::move(override_);
    override_.reset();
  }
  // RFC 2034: enhanced codes only once the client has seen ENHANCEDSTATUSCODES in EHLO. A reply
  // a fault gives is sent as given; a fault that only delays or ends keeps the normal rule.
  const bool fault_reply = fault && fault->reply;
  if (!fault_reply && (!extended_ || !opts_.extensions.has(extension::enhancedstatuscodes))) {
    r.enhanced.clear();
  }
  if (fault && fault->raw) {
    log_.add(direction::server, "<raw> " + *fault->raw, now_);
  } else if (fault && fault->malformed != fault::malformed_kind::none) {
    // The octets the client gets, not the reply they stand for: that is what it has to read.
    std::string wire;
    fault::append_reply_bytes(wire, r, fault.get());
    log_wire_lines(wire);
  } else {
    log_reply(r);
  }
  bool closes = r.code == 421 && fault;
  if (answering_each_recipient_ && r.code == 421) {
    closing_after_each_recipient_ = true;  // after the last recipient's reply
    closes = false;
  }
  auto end = fault ? fault->end : fault::ending::none;
  actions_.emplace_back(send_reply{std::move(r), std::move(fault)});
  if (end == fault::ending::hang) {
    set_mode(mode::hung);
  } else if (end != fault::ending::none) {
    close(end);
  } else if (closes) {
    close();  // RFC 5321 3.8: 421 means the server is closing the channel
  }
}

void server_session::log_reply(const proto::reply& r) {
  // The wire form, one transcript line per reply line, so logs read like the conversation.
  // Nearly every reply is one line without a line break of its own: the wire form less CRLF.
  if (r.lines.size() <= 1 && (r.lines.empty() || r.lines[0].find('\n') == std::string::npos)) {
    std::string wire = proto::to_wire(r);
    wire.resize(wire.size() - 2);
    log_.add(direction::server, std::move(wire), now_);
    return;
  }
  log_wire_lines(proto::to_wire(r));
}

void server_session::log_wire_lines(std::string_view wire) {
  while (!wire.empty()) {
    auto end = wire.find("\r\n");
    log_.add(direction::server, std::string(wire.substr(0, end)), now_);
    if (end == std::string_view::npos) break;
    wire.remove_prefix(end + 2);
  }
}

void server_session::error_reply(int code, const char* enhanced, std::string text) {
  reply(code, enhanced, std::move(text));
  count_error();
}

void server_session::error_reply(proto::reply r) {
  reply(std::move(r));
  count_error();
}

void server_session::count_error() {
  if (++errors_ >= opts_.max_errors && mode_ != mode::closed) {
    // A 421 names the server (RFC 5321 3.8), as every other one does.
    reply(421, "4.7.0", opts_.hostname + " Too many errors, closing connection");
    close();
  }
}

}  // namespace smtpfault::session
