// HELO/EHLO, MAIL, RCPT and STARTTLS: the greeting, the envelope (RFC 5321 4.1.1) and the
// upgrade to TLS, after which everything learned before it is forgotten (RFC 3207 4.2).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/address.hpp"
#include "proto/ascii.hpp"
#include "proto/bounded_text.hpp"
#include "proto/reply.hpp"
#include "session/server_session.hpp"

namespace smtpfault::session {

using proto::verb;

namespace {

// "Sender <a@b> OK", sized once: MAIL and RCPT answer with one on every message.
std::string bracketed_text(std::string_view before, const proto::mailbox& m,
                           std::string_view after) {
  std::string text;
  text.reserve(before.size() + m.local_part.size() + 1 + m.domain.size() + after.size());
  text += before;
  m.append_address(text);
  text += after;
  return text;
}

}  // namespace

void server_session::do_helo(const proto::command& cmd) {
  reset_transaction();
  greeted_ = true;
  extended_ = cmd.kind != verb::helo;
  // Taken, as real servers take it, and noted: a mailer that names itself "a b" or "-x-" finds
  // out here rather than at a server that refuses it.
  if (!proto::is_domain_or_address_literal(cmd.argument)) {
    note("anomaly: helo_syntax: '" + proto::bounded_text(cmd.argument, 255) +
             "' is neither a domain nor an address literal (RFC 5321 4.1.1.1)",
         now_);
  }
  facts_.helo = cmd.argument;
  if (cmd.kind == verb::helo) return reply(250, "", opts_.hostname);
  reply(ehlo_reply(cmd.argument));
}

proto::reply server_session::ehlo_reply(const std::string& name) const {
  // A reply line is at most 512 octets with its code and CRLF: a long name is shortened to fit.
  constexpr std::size_t longest_text = 512 - 4 - 2;
  const std::string greets = opts_.hostname + " greets ";
  const std::string shown = proto::shown_in_reply(
      name, greets.size() + 3 < longest_text ? longest_text - greets.size() : 3);
  std::vector<std::string> lines{greets + shown};
  add_keywords(lines);
  return proto::reply(250, "", std::move(lines));
}

std::vector<std::string> server_session::advertised_keywords() const {
  std::vector<std::string> lines;
  add_keywords(lines);
  return lines;
}

void server_session::add_keywords(std::vector<std::string>& lines) const {
  const auto& ext = opts_.extensions;
  if (ehlo_keywords_) {
    lines.insert(lines.end(), ehlo_keywords_->begin(), ehlo_keywords_->end());
    return;
  }
  if (ext.has(extension::pipelining)) lines.emplace_back("PIPELINING");
  if (ext.has(extension::size)) {
    lines.emplace_back("SIZE " + std::to_string(opts_.limits.max_message_size));
  }
  if (ext.has(extension::eightbitmime)) lines.emplace_back("8BITMIME");
  if (ext.has(extension::smtputf8)) lines.emplace_back("SMTPUTF8");
  if (ext.has(extension::enhancedstatuscodes)) lines.emplace_back("ENHANCEDSTATUSCODES");
  if (ext.has(extension::chunking)) lines.emplace_back("CHUNKING");
  if (ext.has(extension::dsn)) lines.emplace_back("DSN");
  if (ext.has(extension::starttls) && opts_.starttls_available && !facts_.tls) {
    lines.emplace_back("STARTTLS");
  }
  if (ext.has(extension::auth) && facts_.auth_user.empty()) {
    lines.emplace_back("AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2");
  }
}

void server_session::do_mail(const proto::command& cmd) {
  if (!greeted_)
    return error_reply(503, "5.5.1", opts_.lmtp ? "Send LHLO first" : "Send EHLO/HELO first");
  if (in_transaction_) return error_reply(503, "5.5.1", "Nested MAIL command");
  if (!check_mail_params(cmd)) return;
  env_ = envelope{};
  ++envelope_version_;
  env_.mail_from = cmd.path;
  env_.mail_params = cmd.params;
  env_.smtputf8 = cmd.find_param("SMTPUTF8") != nullptr;
  const auto* body = cmd.find_param("BODY");
  env_.body_8bitmime = body && body->value && proto::iequals(*body->value, "8BITMIME");
  if (cmd.path.has_utf8 && !env_.smtputf8) {
    return error_reply(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter");
  }
  in_transaction_ = true;
  errors_ = 0;
  reply(250, "2.1.0", bracketed_text("Sender <", cmd.path, "> OK"));
}

void server_session::do_rcpt(const proto::command& cmd) {
  if (!in_transaction_) return error_reply(503, "5.5.1", "Need MAIL before RCPT");
  if (!check_rcpt_params(cmd)) return;
  if (cmd.path.has_utf8 && !env_.smtputf8) {
    return error_reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8 on MAIL");
  }
  if (env_.recipients.size() >= opts_.limits.max_recipients) {
    return reply(452, "4.5.3", "Too many recipients");
  }
  env_.recipients.push_back(recipient{cmd.path, cmd.params});
  ++envelope_version_;
  errors_ = 0;
  reply(250, "2.1.5", bracketed_text("Recipient <", cmd.path, "> OK"));
}

void server_session::do_starttls(const proto::command& cmd) {
  if (!cmd.argument.empty()) return error_reply(501, "5.5.4", "Syntax: STARTTLS");
  if (facts_.tls) return error_reply(503, "5.5.1", "TLS already active");
  if (!opts_.starttls_available || !opts_.extensions.has(extension::starttls)) {
    return error_reply(502, "5.5.1", "STARTTLS not available");
  }
  // Offered in the EHLO reply alone (RFC 3207 4); a client that skipped EHLO, or sent HELO,
  // was never told the server has it. As AUTH: 503.
  if (!greeted_ || !extended_) return error_reply(503, "5.5.1", "Send EHLO first");
  start_tls how = tls_override_.value_or(start_tls{});
  tls_override_.reset();
  reply(220, "2.0.0", "Ready to start TLS");
  if (how.mode == fault::starttls_mode::close_after_220) return close();
  set_mode(mode::tls_pending);
  actions_.emplace_back(std::move(how));
}

void server_session::on_tls_established(std::string version, std::string cipher,
                                        clock::time_point now) {
  now_ = now;
  // RFC 3207 section 4.2: forget everything learned before the handshake.
  facts_.tls = true;
  facts_.tls_version = std::move(version);
  facts_.tls_cipher = std::move(cipher);
  facts_.helo.clear();
  facts_.auth_user.clear();
  facts_.auth_mechanism.clear();
  greeted_ = false;
  extended_ = false;
  reset_transaction();
  note("TLS established: " + facts_.tls_version + " " + facts_.tls_cipher, now);
  if (mode_ != mode::closed) set_mode(mode::command);
}

}  // namespace smtpfault::session
