#include "session/server_session.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "proto/ascii.hpp"
#include "proto/bdat.hpp"
#include "proto/bounded_text.hpp"

namespace smtpfault::session {

namespace {

using proto::verb;

// AUTH lines and the AUTH command's initial response carry secrets: keep them out of logs.
std::string masked_command(const proto::command& cmd, std::string_view line) {
  if (cmd.kind != verb::auth) return std::string(line);
  // The mechanism stays readable, however many spaces come before it ("AUTH  CRAM-MD5").
  const auto parts = proto::split_auth_argument(cmd.argument);
  if (!parts.initial_response) return std::string(line);
  const auto mechanism_end =
      static_cast<std::size_t>(parts.mechanism.data() - cmd.argument.data()) +
      parts.mechanism.size();
  return cmd.verb_text + " " + cmd.argument.substr(0, mechanism_end) + " " +
         std::string(masked_secret);
}

// Whether a chunk of octets follows this command line: a BDAT's (RFC 3030 2), unless empty.
bool chunk_follows(std::string_view line) {
  if (!proto::istarts_with(line, "BDAT ")) return false;
  const auto args = proto::parse_bdat_args(line.substr(5));
  return args && args->size > 0;
}

// Whether a client must wait for this command's reply before it sends more (RFC 2920 3.1;
// STARTTLS by RFC 3207 4).
bool ends_a_group(verb v) {
  switch (v) {
    case verb::ehlo:
    case verb::helo:
    case verb::lhlo:
    case verb::starttls:
    case verb::data:
    case verb::quit:
    case verb::noop:
    case verb::vrfy:
    case verb::expn:
      return true;
    default:
      return false;
  }
}

}  // namespace

server_session::server_session(server_options opts, session_facts facts, transcript& log)
    : opts_(std::move(opts)),
      facts_(std::move(facts)),
      log_(log),
      lines_(opts_.limits.command_line),
      bdat_(opts_.limits.max_message_size) {
  facts_.lmtp = opts_.lmtp;
}

void server_session::start(clock::time_point now) {
  now_ = now;
  if (wants(hook::connect)) return consult(hook::connect);
  greet();
}

void server_session::greet() {
  reply(220, "", opts_.hostname + (opts_.lmtp ? " LMTP" : " ESMTP") + " smtpfault ready");
}

bool server_session::blocked() const {
  return mode_ == mode::tls_pending || mode_ == mode::storing || mode_ == mode::consulting ||
         mode_ == mode::closed;
}

std::optional<action> server_session::next_action() {
  if (actions_.empty()) return std::nullopt;
  action a = std::move(actions_.front());
  actions_.pop_front();
  return a;
}

std::size_t server_session::receive(std::string_view input, clock::time_point now,
                                    std::uint64_t max_lines) {
  now_ = now;
  std::size_t total = 0;
  const auto lines_at_start = lines_taken_;
  while (total < input.size() && !blocked() && lines_taken_ - lines_at_start < max_lines) {
    auto rest = input.substr(total);
    std::size_t used = 0;
    switch (mode_) {
      case mode::command:
        used = receive_command(rest);
        break;
      case mode::data:
        used = receive_data(rest);
        break;
      case mode::bdat_chunk:
        used = receive_bdat(rest);
        break;
      case mode::auth_response:
        used = receive_auth(rest);
        break;
      case mode::hung:
        used = rest.size();
        break;  // read and ignored
      default:
        break;
    }
    if (used == 0) break;
    total += used;
  }
  if (mode_ == mode::tls_pending && total < input.size()) {
    note_plaintext_discarded(input.size() - total, now);
    total = input.size();
  }
  return total;
}

// RFC 3207 section 4: nothing sent before the handshake may be acted on (CVE-2011-0411).
void server_session::note_plaintext_discarded(std::size_t octets, clock::time_point now) {
  note("discarded " + std::to_string(octets) + " octets of plaintext pipelined after STARTTLS",
       now);
}

// RFC 5321 3.1: the client waits for the greeting; Postfix's postscreen rejects "pregreet"
// clients. Said once, however many times the connection looks while the greeting waits.
void server_session::note_early_talker(std::size_t octets, clock::time_point now) {
  if (facts_.early_talker) return;
  facts_.early_talker = true;
  note("client talked before the greeting: " + std::to_string(octets) + " octet(s) waiting", now);
}

// Input that came while a reply was held back (a scenario's delay): a command sent without
// waiting for it, or a TLS close_notify. The transcript has the reply already, where the
// session decided it; the command, if one came, follows the note.
void server_session::note_input_while_held(std::size_t octets, clock::time_point now) {
  note("input came while the reply was held back: " + std::to_string(octets) +
           " octet(s) on the wire (a command sent without waiting for the reply, or the "
           "client's TLS close)",
       now);
}

// RFC 5321 4.5.3.1.4 lets extensions raise the 512 octets: MAIL by 26 for SIZE (RFC 1870 6),
// 100 for DSN's RET and ENVID (RFC 3461 4) and 500 for AUTH= (RFC 4954 5); RCPT by 500 for
// DSN's NOTIFY and ORCPT. AUTH lines have their own limit (auth_line).
namespace {
constexpr std::size_t size_room = 26, dsn_mail_room = 100, auth_room = 500, dsn_rcpt_room = 500;
constexpr std::size_t most_room = std::max(size_room + dsn_mail_room + auth_room, dsn_rcpt_room);
}  // namespace

std::size_t server_session::line_limit(std::string_view line) const {
  const auto& ext = opts_.extensions;
  std::size_t limit = opts_.limits.command_line;
  if (proto::istarts_with(line, "MAIL ")) {
    if (ext.has(extension::size)) limit += size_room;
    if (ext.has(extension::dsn)) limit += dsn_mail_room;
    if (ext.has(extension::auth)) limit += auth_room;
  } else if (proto::istarts_with(line, "RCPT ") && ext.has(extension::dsn)) {
    limit += dsn_rcpt_room;
  }
  return limit;
}

std::size_t server_session::receive_command(std::string_view input) {
  // AUTH lines may be up to auth_line octets (RFC 4954 section 4); others their line_limit.
  lines_.set_max_line(std::max(opts_.limits.command_line + most_room, opts_.limits.auth_line));
  if (!lines_.discarding()) long_line_is_auth_ = proto::istarts_with(input, "AUTH ");
  auto r = lines_.next(input);
  switch (r.st) {
    case proto::line_reader::status::need_more:
      return r.consumed;
    case proto::line_reader::status::too_long:
      ++lines_taken_;
      on_long_line();
      return r.consumed;
    case proto::line_reader::status::line:
      break;
  }
  ++lines_taken_;
  if (r.bare_lf) note("anomaly: bare_lf: the command line ended with a bare LF", now_);
  note_line_anomalies(r.line);
  const bool more_behind = r.consumed < input.size();
  verb kind = verb::unknown;
  // The limit counts the line's end as sent: CRLF, or a bare LF's one octet.
  const std::size_t octets = r.line.size() + (r.bare_lf ? 1 : 2);
  if (octets > line_limit(r.line) && !proto::istarts_with(r.line, "AUTH ")) {
    long_line_is_auth_ = false;
    on_long_line();
  } else {
    kind = on_line(r.line, r.bare_lf);
  }
  if (std::exchange(text_behind_data_, false) && kind == verb::unknown)
    note_text_after_data(r.line);
  // A BDAT's chunk follows its command line at once (RFC 3030 2): whether the client waited
  // shows behind the chunk, once that has been read.
  if (kind != verb::bdat || !chunk_follows(r.line)) note_if_pipelined(more_behind);
  if (more_behind && !group_end_noted_ && ends_a_group(kind)) {
    group_end_noted_ = true;
    note("client pipelined commands after " + std::string(proto::verb_name(kind)) +
             ", which ends a group (RFC 2920 3.1)",
         now_);
  }
  return r.consumed;
}

// More octets behind a command means the client did not wait for its reply (RFC 2920).
// Noted once: a client writing its commands one by one without waiting makes a burst of
// a few commands per read, and 3,000 RCPTs would make a thousand notes.
void server_session::note_if_pipelined(bool more_behind) {
  if (!more_behind || pipelined_noted_) return;
  pipelined_noted_ = true;
  note("client pipelined commands", now_);
}

// A line that is no command, written together with the end of the data: the client most likely
// sent a line "." of its message without doubling it (RFC 5321 4.5.2), the message ended there
// and its rest is being read as commands. Counted as an unstuffed dot: a message cut short is
// what that bug does, and no dot is left in the stored message to show it.
void server_session::note_text_after_data(std::string_view line) {
  note("anomaly: unstuffed_dot: the data ended at a line \".\" with \"" +
           proto::bounded_text(line, 64) +
           "\" behind it in the same write, which is no command (a \".\" line in the message not "
           "doubled?)",
       now_);
}

// A bare CR or a NUL inside a command line is kept (the command may still be understood) and
// noted, as in a message's text (RFC 5321 2.3.8: CR and LF only together, as the line's end).
// The first of each kind in a line: two searches that find nothing in nearly every command.
// Noted in the order they occur in the line, as a message's text lists them.
void server_session::note_line_anomalies(std::string_view line) {
  const auto find = [&](char octet) -> std::optional<std::uint64_t> {
    const void* at = std::memchr(line.data(), octet, line.size());
    if (!at) return std::nullopt;
    return static_cast<std::uint64_t>(static_cast<const char*>(at) - line.data());
  };
  const auto cr = find('\r');
  const auto nul = find('\0');
  if (!cr && !nul) return;
  const bool nul_first = nul && (!cr || *nul < *cr);
  if (nul_first) note_anomaly({proto::anomaly_kind::nul, *nul}, " in the command line", now_);
  if (cr) note_anomaly({proto::anomaly_kind::bare_cr, *cr}, " in the command line", now_);
  if (nul && !nul_first)
    note_anomaly({proto::anomaly_kind::nul, *nul}, " in the command line", now_);
}

void server_session::on_long_line() {
  log_.add(direction::client, "<over-long line discarded>", now_);
  if (long_line_is_auth_) {
    return error_reply(500, "5.5.6", "Authentication exchange line is too long");
  }
  error_reply(500, "5.5.2", "Line too long");
}

verb server_session::on_line(std::string_view line, bool bare_lf) {
  auto parsed = proto::parse_command(line, opts_.limits);
  if (!parsed && parsed.error().error == proto::command_error::unknown_verb &&
      !parsed.error().verb_text.empty()) {
    // Unknown verbs still go through the command hook: scenarios may implement them.
    proto::command unknown;
    unknown.verb_text = parsed.error().verb_text;
    auto space = line.find(' ');
    if (space != std::string_view::npos) unknown.argument = std::string(line.substr(space + 1));
    unknown.bare_lf = bare_lf;
    log_.add(direction::client, std::string(line), now_);
    // Go's net/smtp cancels an AUTH that already failed: "*" answers a 334 challenge alone.
    if (unknown.verb_text == "*") {
      note(
          "anomaly: auth_cancel: '*' came as a command, outside an AUTH exchange (RFC 4954 4: "
          "it only answers a 334 challenge)",
          now_);
    }
    dispatch(std::move(unknown));
    return verb::unknown;
  }
  if (!parsed) {
    log_.add(direction::client, std::string(line), now_);
    on_command_error(parsed.error());
    return parsed.error().kind;
  }
  log_.add(direction::client, masked_command(*parsed, line), now_);
  parsed->bare_lf = bare_lf;
  const verb kind = parsed->kind;
  dispatch(std::move(*parsed));
  return kind;
}

void server_session::on_command_error(const proto::command_failure& f) {
  switch (f.error) {
    case proto::command_error::unknown_verb:
      return error_reply(500, "5.5.1", "Command unrecognized");
    case proto::command_error::bad_path: {
      // An address over a length limit is not a syntax error: say which limit (RFC 5321 4.5.3.1).
      const auto& lim = opts_.limits;
      const std::size_t limit = f.detail == "local part too long" ? lim.local_part
                                : f.detail == "domain too long"   ? lim.domain
                                : f.detail == "path too long"     ? lim.path
                                                                  : 0;
      const std::string what =
          f.kind == verb::rcpt ? "Bad recipient address" : "Bad sender address";
      const char* enhanced = f.kind == verb::rcpt ? "5.1.3" : "5.1.7";
      if (limit != 0) {
        return error_reply(
            501, enhanced,
            what + ": " + f.detail + " (limit " + std::to_string(limit) + " octets)");
      }
      return error_reply(501, enhanced, what + " syntax");
    }
    case proto::command_error::bad_parameter:
      return error_reply(501, "5.5.4", "Malformed parameter: " + f.detail);
    case proto::command_error::syntax:
      // An empty line names no command at all (RFC 5321 4.2.4: 500 for an unrecognized one).
      if (f.kind == verb::unknown) return error_reply(500, "5.5.2", "Syntax error: " + f.detail);
      return error_reply(501, "5.5.4", "Syntax error" + (f.detail.empty() ? "" : ": " + f.detail));
  }
}

// Taken as an rvalue: a command a hook sees is kept until the hook decides, and moved there.
void server_session::dispatch(proto::command&& cmd) {
  ++counts_[static_cast<std::size_t>(cmd.kind)];
  if (refusing_ && cmd.kind != verb::quit) {
    return error_reply(503, "5.5.1", "No SMTP service here; only QUIT is accepted");
  }
  if (wants(hook::command)) {
    pending_cmd_ = std::move(cmd);
    return consult(hook::command);
  }
  after_command_hook(std::move(cmd));
}

void server_session::run_default(const proto::command& cmd) {
  const bool lmtp = opts_.lmtp;
  switch (cmd.kind) {
    case verb::helo:
    case verb::ehlo:
      if (lmtp) return error_reply(500, "5.5.1", "This is an LMTP server: use LHLO");
      return do_helo(cmd);
    case verb::lhlo:
      if (!lmtp) return error_reply(500, "5.5.1", "Command unrecognized");
      return do_helo(cmd);
    case verb::mail:
      return do_mail(cmd);
    case verb::rcpt:
      return do_rcpt(cmd);
    case verb::data:
      return do_data(cmd);
    case verb::bdat:
      if (!opts_.extensions.has(extension::chunking)) {
        return error_reply(500, "5.5.1", "Command unrecognized");
      }
      return do_bdat(cmd);
    case verb::starttls:
      return do_starttls(cmd);
    case verb::auth:
      return do_auth(cmd);
    case verb::rset:
      reset_transaction();
      return reply(250, "2.0.0", "Ok");
    case verb::noop:
      return reply(250, "2.0.0", "Ok");
    case verb::quit:
      reply(221, "2.0.0", opts_.hostname + " closing connection");
      return close();
    case verb::vrfy:
      if (!opts_.extensions.has(extension::vrfy)) {
        return error_reply(502, "5.5.1", "VRFY not implemented");
      }
      return reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
    case verb::expn:
      return error_reply(502, "5.5.1", "EXPN not implemented");
    case verb::help:
      if (!opts_.extensions.has(extension::help)) {
        return error_reply(502, "5.5.1", "HELP not implemented");
      }
      return do_help();
    case verb::unknown:
      return error_reply(500, "5.5.1", "Command unrecognized");
  }
}

// Only what this session offers: a hidden extension's command is not listed either, nor, after
// HELO (which offers no extension), BDAT, STARTTLS and AUTH, which get 503 there.
void server_session::do_help() {
  const auto& ext = opts_.extensions;
  const bool extended = !greeted_ || extended_;
  std::string text =
      opts_.lmtp ? "Commands: LHLO MAIL RCPT DATA" : "Commands: EHLO HELO MAIL RCPT DATA";
  if (extended && ext.has(extension::chunking)) text += " BDAT";
  text += " RSET NOOP QUIT";
  if (ext.has(extension::vrfy)) text += " VRFY";
  text += " HELP";
  if (extended && ext.has(extension::starttls) && opts_.starttls_available && !facts_.tls) {
    text += " STARTTLS";
  }
  if (extended && ext.has(extension::auth)) text += " AUTH";
  reply(214, "2.0.0", std::move(text));
}

void server_session::close(fault::ending how, std::chrono::milliseconds delay) {
  set_mode(mode::closed);
  actions_.emplace_back(close_connection{how, delay});
}

void server_session::reset_transaction() {
  in_transaction_ = false;
  chunk_reply_.reset();  // a chunk refused (or a RSET, a new MAIL) answers nothing of it
  each_recipient_.clear();
  env_ = envelope{};
  ++envelope_version_;
  bdat_ = proto::bdat_reader(opts_.limits.max_message_size);
  bdat_last_ = false;
  if (mode_ != mode::storing) pending_ = message{};
}

void server_session::set_mode(mode m) {
  // A closed session stays closed, whatever a default handler does after a fault ended it.
  if (mode_ == mode::closed || (mode_ == mode::hung && m != mode::closed)) return;
  mode_ = m;
}

}  // namespace smtpfault::session
