#include "script/expectations.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "proto/ascii.hpp"
#include "proto/body_scan.hpp"
#include "proto/command.hpp"
#include "script/retry_checks.hpp"
#include "script/transcript_places.hpp"
#include "session/transcript.hpp"

namespace smtpfault::script {

namespace {

using capture::session_summary;

// The server closed first: a 421, a close or reset a scenario asked for (after its reply or
// instead of one), a 521 greeting. The client had no chance to send QUIT. Nor had one that
// left while a reply was held back: the transcript has the reply where it was decided, though
// it never went out.
bool server_ended(const session_summary& s) {
  if (s.reply_held) return true;
  for (const auto& x : s.exchanges)
    if (x.code == 421) return true;
  return !s.client_closed || (!s.exchanges.empty() && s.exchanges.back().code == 0);
}

check_result check_delivered(const count_range& r, const run_outcome& run) {
  check_result c{"delivered", true, ""};
  const auto n = static_cast<std::uint64_t>(run.messages);
  c.passed = (!r.min || n >= *r.min) && (!r.max || n <= *r.max);
  std::string want = r.min && r.max && *r.min == *r.max ? std::to_string(*r.min)
                     : r.min && r.max ? std::to_string(*r.min) + " to " + std::to_string(*r.max)
                     : r.min          ? "at least " + std::to_string(*r.min)
                                      : "at most " + std::to_string(r.max.value_or(0));
  c.detail = "expected " + want + " message(s) delivered, got " + std::to_string(n) + " in " +
             std::to_string(run.sessions.size()) + " session(s)";
  // Texts that came in full with no 250 to them (the client gave up on a reply held back, the
  // scenario closed the connection, the server stopped): not delivered as the client knows
  // it, yet each may be a copy a real server delivers, which is what a mailer that resends on
  // a timeout multiplies.
  std::size_t unanswered = 0;
  for (const auto& s : run.sessions)
    unanswered += capture::texts_without_250(s);
  if (unanswered > 0) {
    const bool one = unanswered == 1;
    c.detail += "; " + std::to_string(unanswered) + (one ? " more text" : " more texts") +
                " came in full but no 250 to " + (one ? "it" : "them") +
                " reached the client (a real server may have taken " + (one ? "it" : "each") +
                " all the same, which is how duplicates come about)";
  }
  return c;
}

// The last command as the quit check names it: a masked line of an AUTH conversation ("****")
// by the AUTH command it answered, so that a reader knows what the stars stand for.
std::string closing_command(const session_summary& s) {
  const auto& last = s.exchanges.back();
  if (last.command != session::masked_secret) return "'" + last.command + "'";
  for (auto x = s.exchanges.rbegin(); x != s.exchanges.rend(); ++x) {
    if (!proto::istarts_with(x->command, "AUTH ")) continue;
    const std::string_view auth = x->command;
    const auto end = auth.find(' ', 5);
    return "its answer to a challenge of '" + std::string(auth.substr(0, end)) + "' ('" +
           last.command + "', masked)";
  }
  return "'" + last.command + "' (a masked credential)";
}

check_result check_quit(const run_outcome& run) {
  check_result c{"quit", true, "every session ended with QUIT"};
  if (run.sessions.empty()) {  // not a pass by default: nothing ended, with QUIT or without
    c.passed = false;
    c.detail = "expected sessions that end with QUIT; the client never connected";
    return c;
  }
  std::size_t excused = 0;  // ended by the server: said on a pass, which is not "every" then
  for (const auto& s : run.sessions) {
    // A session the server ended (421, a close, no greeting) owes no QUIT; one that got a
    // greeting does, even a 554 refusing service (RFC 5321 3.1: the client then sends QUIT).
    if (s.quit) continue;
    if (s.exchanges.empty() || server_ended(s)) {
      ++excused;
      continue;
    }
    c.passed = false;
    const auto& last = s.exchanges.back();
    // The reply it closed on is often the real failure (a message refused as too long); a
    // multi-line one by its first line too, which says what happened.
    const std::string answered =
        last.code >= 400 ? " (answered '" + capture::quoted_reply(last, 160) + "')" : "";
    c.detail = "expected QUIT before closing; session " + s.id + " closed after " +
               (s.exchanges.size() == 1 ? "the greeting (" + std::to_string(last.code) + ")"
                                        : closing_command(s) + answered) +
               " without QUIT (transcript line " + std::to_string(last.line) + ")";
    // Closed as soon as the handshake was done, before any command over TLS: most likely the
    // client refused the certificate, which is the thing to look at (Node.js over TLS 1.2 when
    // not given the test CA; s-nail 14.9 and Jakarta Mail match host names only, and refuse
    // one given as 127.0.0.1).
    if (capture::closed_right_after_tls(s)) c.detail += closed_after_handshake_hint;
    break;
  }
  if (c.passed && excused > 0) {
    const std::string why =
        "ended before the client could send it, by the server (a 421, a "
        "close), in a failed TLS handshake or while the client still waited "
        "for a reply";
    c.detail = excused == run.sessions.size()
                   ? "no session owed a QUIT: each " + why
                   : "every session ended with QUIT but " + std::to_string(excused) +
                         ", which owed none: " + why;
  }
  return c;
}

// name: which expectation; AUTH is fine only once TLS is up (STARTTLS or implicit).
check_result check_auth_after_tls(const char* name, const run_outcome& run) {
  check_result c{name, true, "no AUTH sent"};
  for (const auto& s : run.sessions) {
    for (const auto& x : s.exchanges) {
      if (x.verb != "AUTH") continue;
      c.detail = "AUTH only over TLS";
      if (s.implicit_tls || (s.tls_at && s.tls_at < x.line)) continue;
      c.passed = false;
      c.detail =
          "expected STARTTLS before AUTH; got AUTH over plaintext (" + where(s, x.line) + ")";
      return c;
    }
  }
  return c;
}

// Plaintext after a failed STARTTLS, in that session or on a later connection (a reconnect
// that leaves STARTTLS out is the same downgrade an attacker who breaks the handshake wants).
check_result check_no_plaintext_after_tls_failure(const run_outcome& run) {
  check_result c{"no_plaintext_after_tls_failure", true, "no plaintext after a failed STARTTLS"};
  const session_summary* failed_in = nullptr;  // the first session where STARTTLS failed
  std::size_t failed_line = 0;
  bool given_up = false;  // ... where the client closed right after the handshake
  for (const auto& s : run.sessions) {
    std::size_t failed = s.tls_failed_at;
    const bool gave_up = !failed && capture::closed_right_after_tls(s);
    if (gave_up) failed = s.tls_at;
    for (const auto& x : s.exchanges) {
      if (x.verb == "STARTTLS" && x.code >= 400 && !failed) failed = x.line;
      bool sensitive = x.verb == "MAIL" || x.verb == "RCPT" || x.verb == "DATA" ||
                       x.verb == "AUTH" || x.verb == "BDAT";
      if (!sensitive) continue;
      if (failed && x.line > failed && !(s.tls_at && s.tls_at > failed)) {
        c.passed = false;
        c.detail = "expected the client to give up after STARTTLS failed (" + where(s, failed) +
                   "); it went on with " + x.verb + " in plaintext (" + where(s, x.line) + ")";
        return c;
      }
      const bool encrypted = s.implicit_tls || (s.tls_at && s.tls_at < x.line);
      if (!failed && failed_in && !encrypted) {
        c.passed = false;
        c.detail = (given_up ? "expected nothing in plaintext after the client gave up on TLS ("
                             : "expected nothing in plaintext after STARTTLS failed (") +
                   where(*failed_in, failed_line) +
                   (given_up ? ": it closed right after the handshake, before any command "
                               "over TLS but a QUIT: it would not go on over that TLS session "
                               "(a certificate it refused, or something it read there)"
                             : "") +
                   "); a new connection sent " + x.verb + " without TLS (" + where(s, x.line) + ")";
        return c;
      }
    }
    if (failed && !failed_in) {
      failed_in = &s;
      failed_line = failed;
      given_up = gave_up;
    }
  }
  // A pass with no failure to fall back from says so, not that one was met and handled.
  if (!failed_in) {
    c.detail =
        "nothing to fall back from: no STARTTLS was refused, and no TLS handshake failed or was "
        "given up by the client";
  }
  return c;
}

// A count the transcript analysis keeps per session. first_at: where the first one is, so that
// the detail points into the transcript; first_note, where kept: what the transcript says there.
struct session_count {
  std::size_t session_summary::*count;
  std::size_t session_summary::*first_at;
  std::string session_summary::*first_note = nullptr;
};

// Passes with held when no session has any; else "expected <expected>; session ... had ...".
check_result check_counter(const char* name, session_count counted, const std::string& expected,
                           const std::string& held, const run_outcome& run) {
  check_result c{name, true, held};
  for (const auto& s : run.sessions) {
    if (s.*counted.count == 0) continue;
    c.passed = false;
    c.detail = "expected " + expected + "; session " + s.id + " had " +
               std::to_string(s.*counted.count) + ", the first at transcript line " +
               std::to_string(s.*counted.first_at) +
               (counted.first_note ? ": " + s.*counted.first_note : std::string());
    break;
  }
  return c;
}

// RFC 5321 4.5.3.1.6: 1000 octets with the CRLF. The server notes a line past its own
// limits.text_line; one it was configured to take (a larger limit, or none) is still over the
// RFC's, and that is what the mailer is judged by.
check_result check_line_length(const run_outcome& run) {
  constexpr std::size_t rfc_text_line = 1000;
  auto c = check_counter("line_length",
                         {&session_summary::long_lines, &session_summary::first_long_line_at},
                         "no lines over the limit", "no lines over the limit", run);
  if (!c.passed) return c;
  for (const auto& m : run.stored) {
    if (!proto::scan_body(m->msg.data, rfc_text_line).line_too_long) continue;
    c.passed = false;
    c.detail = "expected no lines over RFC 5321's 1000 octets; message " + m->id + " of session " +
               m->msg.facts.session_id +
               " has one (the server took it: its limits.text_line is larger)";
    break;
  }
  return c;
}

// RFC 5321 2.3.8: a line ends with CRLF and nothing else, and a CR or LF of its own has no
// place in a command or a message (RFC 5322 2.3). Strict servers refuse one: Postfix with
// smtpd_forbid_bare_newline = yes ends the session with 521, Exchange Online refuses the message.
check_result check_line_endings(const run_outcome& run) {
  return check_counter("line_endings",
                       {&session_summary::bare_line_ends, &session_summary::first_bare_line_end_at,
                        &session_summary::first_bare_line_end},
                       "every line to end with CRLF and no CR or LF alone (RFC 5321 2.3.8)",
                       "every line ended with CRLF", run);
}

check_result check_pipelining(const run_outcome& run) {
  check_result c{"pipelining", true, "each reply waited for where RFC 2920 asks"};
  for (const auto& s : run.sessions) {
    if (s.pipelined && !s.pipelining_advertised) {
      c.passed = false;
      c.detail =
          "expected no pipelining: the server did not advertise PIPELINING, but the client sent "
          "commands without waiting for replies (" +
          where(s, s.pipelined_at) + ")";
      return c;
    }
    if (!s.pipelined_after.empty()) {
      c.passed = false;
      const auto& verb = s.pipelined_after;
      c.detail = "expected the client to wait for the reply to " + verb +
                 " before sending more (RFC 2920 3.1: " + verb +
                 " ends a pipelined group); more came behind it without waiting (" +
                 where(s, s.pipelined_after_at) + ")";
      return c;
    }
    bool data_refused = false;
    for (const auto& x : s.exchanges) {
      if (x.verb == "DATA") data_refused = x.code != 354;
      if (data_refused && x.code == 500) {
        c.passed = false;
        c.detail =
            "expected the client to read the DATA reply; it sent message text as commands"
            " after DATA was refused (" +
            where(s, x.line) + ")";
        return c;
      }
    }
  }
  return c;
}

}  // namespace

std::size_t run_at(const run_outcome& run, std::chrono::system_clock::time_point t) {
  std::size_t n = 1;
  for (std::size_t i = 1; i < run.run_starts.size(); ++i)
    if (run.run_starts[i] <= t) n = i + 1;
  return n;
}

std::string signal_name(int sig) {
  const char* name = sigabbrev_np(sig);
  return name ? "SIG" + std::string(name) : "signal " + std::to_string(sig);
}

namespace {

// "0", "killed at timeout", "139: killed by SIGSEGV": run i's exit status, for a reader.
std::string exit_text(const run_outcome& run, std::size_t i) {
  const int code = run.exit_codes[i];
  if (code == -1) return "killed at timeout";
  const int sig = i < run.exit_signals.size() ? run.exit_signals[i] : 0;
  if (!sig) return std::to_string(code);
  return std::to_string(code) + ": killed by " + signal_name(sig);
}

std::string exit_texts(const run_outcome& run) {
  std::string out;
  for (std::size_t i = 0; i < run.exit_codes.size(); ++i)
    out += (out.empty() ? "" : ", ") + exit_text(run, i);
  return out;
}

// wants: one status for every run, or one per run.
check_result check_exit(const std::vector<std::string>& wants, const run_outcome& run) {
  check_result c{"exit", true, ""};
  bool crashed = false;
  bool success_only = true;
  for (std::size_t i = 0; i < run.exit_codes.size(); ++i) {
    const std::string& want = wants[std::min(i, wants.size() - 1)];
    success_only = success_only && want == "success";
    const int code = run.exit_codes[i];
    // A mailer killed by a signal (a crash) did not report the failure: it never got that far.
    const bool signalled = i < run.exit_signals.size() && run.exit_signals[i] != 0;
    crashed = crashed || signalled;
    bool ok = want == "success"   ? code == 0
              : want == "failure" ? code != 0 && code != -1 && !signalled
                                  : std::to_string(code) == want;  // "139" may mean SIGSEGV
    if (!ok) c.passed = false;
  }
  std::string wanted;
  for (const auto& w : wants)
    wanted += (wanted.empty() ? "" : ", ") + w;
  if (wants.size() > 1) wanted += " (one per run)";
  const std::string got = exit_texts(run);
  c.detail = "expected exit status " + wanted + ", got " + (got.empty() ? "none" : got);
  if (crashed && !success_only) c.detail += " (a crash is not a reported failure)";
  return c;
}

check_result check_connected(const run_outcome& run) {
  const std::string exits = exit_texts(run);
  std::string detail = "expected the client to connect; it never did" +
                       (exits.empty() ? std::string() : " (exit status " + exits + ")");
  if (run.left_processes) {
    // A mailer that hands the delivery to a background process exits before it connects.
    detail +=
        "; it left processes running when it exited, and they were ended with it (a delivery in "
        "the background must be waited for)";
  }
  return {"connected", false, detail};
}

}  // namespace

bool expectations::empty() const {
  return !delivered && !quit && !starttls_before_auth && !no_plaintext_auth &&
         !no_plaintext_after_tls_failure && !retried_after_4xx && !no_retry_after_5xx &&
         !dot_stuffing && !line_length && !line_endings && !pipelining && exit.empty() &&
         checks.empty();
}

std::optional<std::string> failed_hooks(const run_outcome& run) {
  // Each distinct error once, in the order first seen, with its first session and how many
  // sessions it failed in: a hook failing the same way in every session is one mistake.
  struct seen {
    const std::string* error;
    const std::string* session;
    std::size_t sessions;
  };
  std::vector<seen> errors;
  for (const auto& s : run.sessions) {
    if (s.scenario_error.empty()) continue;
    auto same = std::find_if(errors.begin(), errors.end(),
                             [&](const seen& e) { return *e.error == s.scenario_error; });
    if (same != errors.end()) {
      ++same->sessions;
    } else {
      errors.push_back({&s.scenario_error, &s.id, 1});
    }
  }
  if (errors.empty()) return std::nullopt;
  constexpr std::size_t shown = 5;
  std::string text;
  for (std::size_t i = 0; i < errors.size() && i < shown; ++i) {
    const auto& e = errors[i];
    text += (i ? "; " : "") + *e.error + " (session " + *e.session;
    if (e.sessions > 1) text += " and " + std::to_string(e.sessions - 1) + " more";
    text += ")";
  }
  if (const auto more = errors.size() > shown ? errors.size() - shown : 0) {
    text += "; and " + std::to_string(more) + (more == 1 ? " other error" : " other errors");
  }
  return text;
}

// The most specific findings come first: the verdict's reason is the first failed check, and a
// wrong count or a missing QUIT is usually a consequence of something listed before it.

const std::vector<std::string>& waivable_checks() {
  static const std::vector<std::string> names = {"line_length", "line_endings", "dot_stuffing",
                                                 "pipelining", "quit"};
  return names;
}

std::vector<check_result> evaluate(const expectations& e, const run_outcome& run) {
  std::vector<check_result> out;
  // Every expectation is about what the client did on the wire. Without a single session it
  // was never put to the test, and "delivered = 0" or "exit = failure" alone would pass a
  // mailer that cannot even connect (a misspelt command, a wrong port).
  if (run.sessions.empty()) out.push_back(check_connected(run));
  if (e.starttls_before_auth.value_or(false)) {
    out.push_back(check_auth_after_tls("starttls_before_auth", run));
  }
  if (e.no_plaintext_auth.value_or(false)) {
    out.push_back(check_auth_after_tls("no_plaintext_auth", run));
  }
  if (e.no_plaintext_after_tls_failure.value_or(false)) {
    out.push_back(check_no_plaintext_after_tls_failure(run));
  }
  if (e.retried_after_4xx.value_or(false)) out.push_back(check_retry(e, run));
  if (e.no_retry_after_5xx.value_or(false)) out.push_back(check_no_retry(run));
  if (e.line_length.value_or(false)) {
    out.push_back(check_line_length(run));
  }
  if (e.line_endings.value_or(false)) out.push_back(check_line_endings(run));
  if (e.dot_stuffing.value_or(false)) {
    auto c =
        check_counter("dot_stuffing",
                      {&session_summary::unstuffed_dots, &session_summary::first_unstuffed_dot_at},
                      "no unstuffed leading dots", "no unstuffed leading dots", run);
    const auto first = std::find_if(run.sessions.begin(), run.sessions.end(),
                                    [](const session_summary& s) { return s.unstuffed_dots > 0; });
    if (!c.passed && first->data_ended_at_dot_line) {
      c.detail +=
          " (a line of only \".\" went without its dot doubled, RFC 5321 4.5.2: it ended the "
          "message there, and what followed was read as commands)";
    } else if (!c.passed) {
      c.detail +=
          " (a line of the message that begins with \".\" went without its dot doubled, RFC "
          "5321 4.5.2: the server took the dot away, so the stored text lost it, and a line of "
          "only \".\" would have ended the message there)";
    }
    out.push_back(std::move(c));
  }
  if (e.pipelining.value_or(false)) out.push_back(check_pipelining(run));
  if (e.quit.value_or(false)) out.push_back(check_quit(run));
  if (!e.exit.empty()) out.push_back(check_exit(e.exit, run));
  if (e.delivered) out.push_back(check_delivered(*e.delivered, run));
  return out;
}

}  // namespace smtpfault::script
