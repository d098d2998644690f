#include "capture/session_analysis.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>

namespace smtpfault::capture {

namespace {

using session::direction;
using session::transcript_entry;

std::string first_word_upper(const std::string& line) {
  std::string w = line.substr(0, line.find(' '));
  for (auto& c : w)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return w;
}

int reply_code(const std::string& text) {
  if (text.size() < 3 || !std::isdigit(static_cast<unsigned char>(text[0]))) return 0;
  return std::atoi(text.substr(0, 3).c_str());
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

// "anomaly: KIND ...": counted, each kind once, and the first of the kinds checks judge.
bool read_anomaly(session_summary& out, const std::string& text, std::size_t line) {
  constexpr std::string_view mark = "anomaly: ";
  if (!text.starts_with(mark)) return false;
  if (out.anomalies++ == 0) {
    out.first_anomaly_at = line;
    out.first_anomaly = text.substr(mark.size());
  }
  const auto rest = std::string_view(text).substr(mark.size());
  const std::string kind(rest.substr(0, rest.find_first_of(" :")));
  if (std::find(out.anomaly_kinds.begin(), out.anomaly_kinds.end(), kind) ==
      out.anomaly_kinds.end()) {
    out.anomaly_kinds.push_back(kind);
  }
  if (kind == "unstuffed_dot") {
    if (out.unstuffed_dots++ == 0) {
      out.first_unstuffed_dot_at = line;
      out.data_ended_at_dot_line = starts_with(text, "anomaly: unstuffed_dot: the data ended");
    }
  } else if (kind == "bare_lf" || kind == "bare_cr") {
    if (out.bare_line_ends++ == 0) {
      out.first_bare_line_end_at = line;
      out.first_bare_line_end = std::string(rest);
    }
  } else if (kind == "long_line") {
    if (out.long_lines++ == 0) out.first_long_line_at = line;
  }
  return true;
}

// The implicit-TLS port, a handshake and how it went, and what the scenario did to it.
bool read_tls_event(session_summary& out, const std::string& text, std::size_t line) {
  if (starts_with(text, "connect from") && text.find("(implicit TLS)") != std::string::npos) {
    out.implicit_tls = true;
  } else if (starts_with(text, "TLS established")) {
    out.tls_at = line;
  } else if (text.starts_with(plaintext_injected)) {
    out.tls_plaintext_injected = true;
  } else if (text.starts_with(bad_certificate_established)) {
    out.tls_certificate_made_bad = true;
  } else if (starts_with(text, "TLS handshake")) {
    if (out.tls_failed_at) return true;
    out.tls_failed_at = line;
    std::string_view why = std::string_view(text).substr(std::string_view("TLS handshake ").size());
    if (why.starts_with("failed: ")) why.remove_prefix(std::string_view("failed: ").size());
    if (const auto made_bad = why.find(certificate_made_bad); made_bad != why.npos) {
      out.tls_certificate_made_bad = true;
      why = why.substr(0, made_bad);
    }
    out.tls_failure = why;
  } else {
    return false;
  }
  return true;
}

// The client closed or reset the connection, or a reply could not be written to it.
void read_client_gone(session_summary& out, const std::string& text) {
  // A reply that could not be written found the client gone (or not reading): it left.
  out.client_closed = true;
  out.client_reset = text.find("reset by peer") != std::string::npos;
  // Gone during a hook's smtp.sleep, before any reply was decided: it too left while its
  // reply was held back (a decided one says "reply not sent" below).
  if (text.ends_with("(while the server paused)") && !out.exchanges.empty() &&
      out.exchanges.back().code == 0) {
    out.reply_held = true;
  }
  constexpr std::string_view in_data = " in the message data, after ";
  if (const auto at = text.find(in_data); at != std::string::npos) {
    out.closed_in_data_after = text.substr(at + in_data.size());
  }
}

void read_event(session_summary& out, const std::string& text, std::size_t line,
                std::chrono::system_clock::time_point at) {
  if (read_anomaly(out, text, line) || read_tls_event(out, text, line)) return;
  if (starts_with(text, "client closed the connection") || starts_with(text, "write failed")) {
    read_client_gone(out, text);
  } else if (starts_with(text, "reply not sent")) {
    out.reply_held = true;
  } else if (starts_with(text, "message ") &&
             text.ends_with(" was stored, but its reply was never written")) {
    // The transcript has the 250 where it was decided; it never left (the store marks the
    // message too).
    if (out.delivered > 0) {
      --out.delivered;
      ++out.unacknowledged;
    }
  } else if (text == "fault: hang") {
    out.hung = true;
  } else if (constexpr std::string_view after = "client pipelined commands after ";
             text.starts_with(after)) {
    if (!std::exchange(out.pipelined, true)) out.pipelined_at = line;
    const auto verb = text.substr(after.size());
    out.pipelined_after = verb.substr(0, verb.find(','));
    out.pipelined_after_at = line;
  } else if (starts_with(text, "client pipelined")) {
    if (!std::exchange(out.pipelined, true)) out.pipelined_at = line;
  } else if (starts_with(text, "client talked before the greeting")) {
    out.early_talker = true;
  } else if (constexpr std::string_view mark = "scenario error: "; text.starts_with(mark)) {
    if (out.scenario_error.empty()) out.scenario_error = text.substr(mark.size());
  } else if (starts_with(text, "message of")) {
    // When the data ended; the reply, if one comes, sets its own time.
    out.exchanges.push_back({"<end of data>", "", 0, "", line, at, {}});
  }
}

// The state of one pass over a session's transcript: which exchange a server line answers,
// and (for LMTP) whose recipient's reply to the data it is.
class summary_builder {
 public:
  explicit summary_builder(const session_record& r) : lmtp_(r.facts.lmtp) {
    out_.id = r.facts.session_id;
  }

  void on_event(const transcript_entry& e, std::size_t line) {
    if (e.text.starts_with("the scenario's ") &&
        e.text.find("replaces the server's own refusal") != std::string::npos) {
      refusal_hidden_ = true;
    }
    // Input waited while a reply was held back. It is a command sent without waiting when a
    // command comes next, not when the client only closed (a TLS close_notify is input too).
    if (e.text.starts_with("input came while the reply was held back") &&
        out_.sent_while_held_at == 0 && !held_at_) {
      held_at_ = line;
      // The reply held back answers the newest exchange: "<end of data>" for the message.
      held_ = out_.exchanges.empty()               ? "<no command>"
              : out_.exchanges.back().verb.empty() ? out_.exchanges.back().command
                                                   : out_.exchanges.back().verb;
    }
    read_event(out_, e.text, line, e.at);
  }

  void on_client(const transcript_entry& e, std::size_t line) {
    if (held_at_ != 0) {
      out_.sent_while_held = std::move(held_);
      out_.sent_while_held_at = std::exchange(held_at_, 0);
      out_.sent_while_held_command = e.text;
    }
    exchange x{e.text, first_word_upper(e.text), 0, "", line, e.at, {}};
    // A line answering a 334 is the AUTH exchange going on (masked, or "*" for a cancel): a
    // 454 or 535 to it is AUTH's, for the checks as for a reader.
    const bool auth_response = !out_.exchanges.empty() && out_.exchanges.back().code == 334 &&
                               (e.text == session::masked_secret || e.text == "*");
    if (auth_response) x.verb = "AUTH";
    if (x.verb == "QUIT") out_.quit = true;
    if (x.verb == "MAIL" || x.verb == "RSET") accepted_.clear();
    data_replies_ = 0;
    message_counted_ = false;
    out_.exchanges.push_back(std::move(x));
  }

  // A server line belongs to the newest exchange still waiting for its reply; after a 354 the
  // next reply is the one to the message itself.
  void on_server(const transcript_entry& e, std::size_t line) {
    const int code = reply_code(e.text);
    // The keyword on a line of its own ("250-PIPELINING"): the EHLO reply's first line echoes
    // the client's name, which may hold the word.
    if (code == 250 && e.text.size() >= 4) {
      const std::string_view keyword = std::string_view(e.text).substr(4);
      if (keyword == "PIPELINING") out_.pipelining_advertised = true;
      if (keyword == "STARTTLS") out_.starttls_advertised = true;
    }
    const exchange* last = out_.exchanges.empty() ? nullptr : &out_.exchanges.back();
    const bool after_354 = last && last->verb == "DATA" && last->code == 354;
    const bool next_recipients = lmtp_ && last && last->command == "<end of data>" &&
                                 last->code != 0 && data_replies_ < accepted_.size();
    if (after_354 || next_recipients) {
      out_.exchanges.push_back({"<end of data>", "", 0, "", line, e.at, {}});
    } else if (out_.exchanges.empty() || out_.exchanges.back().code != 0) {
      out_.exchanges.push_back(
          {"<no command>", "", 0, "", line, e.at, {}});  // greeting, unsolicited
    }
    if (out_.exchanges.back().reply_first.empty()) out_.exchanges.back().reply_first = e.text;
    const bool final_line = e.text.size() < 4 || e.text[3] != '-';
    if (final_line) on_reply(out_.exchanges.back(), code, e, line);
  }

  session_summary take() { return std::move(out_); }

 private:
  void on_reply(exchange& x, int code, const transcript_entry& e, std::size_t line) {
    x.code = code;
    x.reply = e.text;
    x.at = e.at;
    x.reply_line = line;
    // A recipient the server refused stays out, whatever the scenario made the reply say.
    const bool added = !std::exchange(refusal_hidden_, false);
    if (x.verb == "RCPT" && code / 100 == 2 && added) {
      const auto open = x.command.find('<'), close = x.command.find('>', open);
      if (open != std::string::npos && close != std::string::npos) {
        accepted_.push_back(x.command.substr(open + 1, close - open - 1));
      }
    }
    if (x.command != "<end of data>") return;
    if (lmtp_ && data_replies_ < accepted_.size()) x.recipient = accepted_[data_replies_];
    ++data_replies_;
    // One message however many recipients an LMTP server answered for.
    if (code == 250 && !message_counted_) {
      ++out_.delivered;
      message_counted_ = true;
    }
  }

  session_summary out_;
  const bool lmtp_;
  // LMTP (RFC 2033 4.2): after the data, one reply per accepted recipient, in RCPT order,
  // before the client's next command.
  std::vector<std::string> accepted_;
  std::size_t data_replies_ = 0;  // replies to the data since the client's last command
  // Input came while a reply was held back (the note's line, and what the reply answered):
  // waiting for the command that shows what it was.
  std::size_t held_at_ = 0;
  std::string held_;
  bool message_counted_ = false;
  bool refusal_hidden_ = false;  // the next reply is a scenario's 2xx over the server's refusal
};

}  // namespace

std::size_t texts_without_250(const session_summary& s) {
  return s.unacknowledged + static_cast<std::size_t>(std::count_if(
                                s.exchanges.begin(), s.exchanges.end(), [](const exchange& x) {
                                  return x.command == "<end of data>" && x.code == 0;
                                }));
}

bool closed_right_after_tls(const session_summary& s) {
  if (!s.tls_at || !s.client_closed) return false;
  return std::none_of(s.exchanges.begin(), s.exchanges.end(), [&](const exchange& x) {
    if (x.line <= s.tls_at) return false;
    // The implicit-TLS port's greeting comes after the handshake: a client may leave for a
    // refusing or garbled one, or while it is held back, and then TLS was not the reason;
    // unless it reset the connection, leaving the greeting unread (Node.js over TLS 1.2 when
    // it refuses the certificate), where one that read it closes.
    if (x.command == "<no command>") return x.code != 220 && !s.client_reset;
    return x.verb != "QUIT";  // a QUIT is only a polite close
  });
}

std::string quoted_reply(const exchange& x, std::size_t line_limit) {
  const auto cut = [&](const std::string& line) { return line.substr(0, line_limit); };
  if (x.reply_first.empty() || x.reply_first == x.reply) return cut(x.reply);
  return cut(x.reply_first) + " ... " + cut(x.reply);
}

session_summary summarize(const session_record& r) {
  summary_builder b(r);
  for (std::size_t i = 0; i < r.entries.size(); ++i) {
    const auto& e = r.entries[i];
    if (e.dir == direction::event) {
      b.on_event(e, i + 1);
    } else if (e.dir == direction::client) {
      b.on_client(e, i + 1);
    } else {
      b.on_server(e, i + 1);
    }
  }
  auto out = b.take();
  if (!r.entries.empty()) {
    out.started = r.entries.front().at;
    out.ended = r.entries.back().at;
  }
  return out;
}

std::uint64_t delivered_of(std::uint64_t stored, const std::vector<session_summary>& sessions) {
  for (const auto& s : sessions)
    stored -= std::min<std::uint64_t>(stored, s.unacknowledged);
  return stored;
}

}  // namespace smtpfault::capture
