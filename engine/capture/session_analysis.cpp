#include "capture/session_analysis.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>

namespace smtpfault::capture {

namespace {

using session::direction;

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

void on_event(session_summary& out, const std::string& text, std::size_t line,
              std::chrono::system_clock::time_point at) {
  if (starts_with(text, "connect from") && text.find("(implicit TLS)") != std::string::npos) {
    out.implicit_tls = true;
  } else if (starts_with(text, "TLS established")) {
    out.tls_at = line;
  } else if (starts_with(text, "TLS handshake")) {
    if (!out.tls_failed_at) out.tls_failed_at = line;
  } else if (starts_with(text, "client closed the connection")) {
    out.client_closed = true;
  } else if (starts_with(text, "reply not sent")) {
    out.reply_held = true;
    // The transcript has the 250 where it was decided; the client never read it.
    if (!out.exchanges.empty() && out.exchanges.back().command == "<end of data>" &&
        out.exchanges.back().code / 100 == 2 && out.delivered > 0) {
      --out.delivered;
      ++out.unacknowledged;
    }
  } else if (text == "fault: hang") {
    out.hung = true;
  } else if (starts_with(text, "client pipelined")) {
    out.pipelined = true;
  } else if (starts_with(text, "client talked before the greeting")) {
    out.early_talker = true;
  } else if (starts_with(text, "anomaly: unstuffed_dot")) {
    if (out.unstuffed_dots++ == 0) out.first_unstuffed_dot_at = line;
  } else if (starts_with(text, "anomaly: long_line")) {
    if (out.long_lines++ == 0) out.first_long_line_at = line;
  } else if (constexpr std::string_view mark = "scenario error: "; text.starts_with(mark)) {
    if (out.scenario_error.empty()) out.scenario_error = text.substr(mark.size());
  } else if (starts_with(text, "message of")) {
    // When the data ended; the reply, if one comes, sets its own time.
    out.exchanges.push_back({"<end of data>", "", 0, "", line, at, {}});
  }
}

}  // namespace

session_summary summarize(const session_record& r) {
  session_summary out;
  out.id = r.facts.session_id;
  if (!r.entries.empty()) {
    out.started = r.entries.front().at;
    out.ended = r.entries.back().at;
  }
  // LMTP (RFC 2033 4.2): after the data, one reply per accepted recipient, in RCPT order,
  // before the client's next command.
  std::vector<std::string> accepted;
  std::size_t data_replies = 0;  // replies to the data since the client's last command
  bool message_counted = false;
  bool refusal_hidden = false;  // the next reply is a scenario's 2xx over the server's refusal
  for (std::size_t i = 0; i < r.entries.size(); ++i) {
    const auto& e = r.entries[i];
    const std::size_t line = i + 1;
    if (e.dir == direction::event) {
      if (e.text.starts_with("the scenario's ") &&
          e.text.find("replaces the server's own refusal") != std::string::npos) {
        refusal_hidden = true;
      }
      on_event(out, e.text, line, e.at);
      continue;
    }
    if (e.dir == direction::client) {
      exchange x{e.text, first_word_upper(e.text), 0, "", line, e.at, {}};
      if (x.verb == "QUIT") out.quit = true;
      if (x.verb == "MAIL" || x.verb == "RSET") accepted.clear();
      data_replies = 0;
      message_counted = false;
      out.exchanges.push_back(std::move(x));
      continue;
    }
    // A server line belongs to the newest exchange still waiting for its reply; after a 354
    // the next reply is the one to the message itself.
    const int code = reply_code(e.text);
    if (code == 250 && e.text.find("PIPELINING") != std::string::npos) {
      out.pipelining_advertised = true;
    }
    const bool final_line = e.text.size() < 4 || e.text[3] != '-';
    const exchange* last = out.exchanges.empty() ? nullptr : &out.exchanges.back();
    const bool after_354 = last && last->verb == "DATA" && last->code == 354;
    const bool next_recipients = r.facts.lmtp && last && last->command == "<end of data>" &&
                                 last->code != 0 && data_replies < accepted.size();
    if (after_354 || next_recipients) {
      out.exchanges.push_back({"<end of data>", "", 0, "", line, e.at, {}});
    } else if (out.exchanges.empty() || out.exchanges.back().code != 0) {
      out.exchanges.push_back(
          {"<no command>", "", 0, "", line, e.at, {}});  // greeting, unsolicited
    }
    auto& x = out.exchanges.back();
    if (!final_line) continue;
    x.code = code;
    x.reply = e.text;
    x.at = e.at;
    // A recipient the server refused stays out, whatever the scenario made the reply say.
    const bool added = !std::exchange(refusal_hidden, false);
    if (x.verb == "RCPT" && code / 100 == 2 && added) {
      const auto open = x.command.find('<'), close = x.command.find('>', open);
      if (open != std::string::npos && close != std::string::npos) {
        accepted.push_back(x.command.substr(open + 1, close - open - 1));
      }
    }
    if (x.command != "<end of data>") continue;
    if (r.facts.lmtp && data_replies < accepted.size()) x.recipient = accepted[data_replies];
    ++data_replies;
    // One message however many recipients an LMTP server answered for.
    if (code == 250 && !message_counted) {
      ++out.delivered;
      message_counted = true;
    }
  }
  return out;
}

std::uint64_t delivered_of(std::uint64_t stored, const std::vector<session_summary>& sessions) {
  for (const auto& s : sessions)
    stored -= std::min<std::uint64_t>(stored, s.unacknowledged);
  return stored;
}

}  // namespace smtpfault::capture
