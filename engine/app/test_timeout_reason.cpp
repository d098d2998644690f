#include "app/test_timeout_reason.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "capture/session_analysis.hpp"
#include "proto/bounded_text.hpp"

namespace smtpfault::app {

namespace {

// The command outlived its last connection: how that one ended, and how long before the kill.
// A mailer stuck after the server gave up on a TLS handshake it never began looks otherwise
// like one that never finished.
std::string after_last_session(const capture::session_summary& s,
                               std::chrono::system_clock::time_point killed_at) {
  char ago[32];
  std::snprintf(ago, sizeof ago, "%.1f s before",
                std::chrono::duration<double>(killed_at - s.ended).count());
  const std::string session = "session " + s.id;
  std::string text;
  if (s.quit) {
    text = "; it had ended its last session (" + session + ") with QUIT " + ago;
  } else if (s.client_closed) {
    text = "; it had closed its last connection (" + session + ") without QUIT " + ago;
  } else if (!s.tls_failure.empty() && s.tls_at == 0) {
    const std::string handshake =
        s.implicit_tls ? "the TLS handshake" : "the TLS handshake after 'STARTTLS'";
    // A timeout is the server giving up; any other failure may be either side's (a client that
    // refuses the certificate ends it with an alert).
    text = s.tls_failure == "timeout"
               ? "; the server had closed its last connection (" + session + ") " + ago +
                     ", when " + handshake + " did not complete in time"
               : "; its last connection (" + session + ") had ended " + ago + ", when " +
                     handshake + " failed: " + s.tls_failure;
  } else {
    text = "; the server had closed its last connection (" + session + ") " + ago;
    if (!s.exchanges.empty() && !s.exchanges.back().reply.empty()) {
      text += ", after '" + proto::bounded_text(s.exchanges.back().reply, 60) + "'";
    }
  }
  return text + ", and the command went on running";
}

// The session was waiting for a reply when the command was killed: the one the scenario held
// back, one it never sends, or one that came malformed. nullopt: it had every reply it asked for.
std::optional<std::string> awaited_reply(const capture::session_summary& s, double time_scale,
                                         double timeout) {
  if (s.exchanges.empty() || (s.exchanges.back().code != 0 && !s.reply_held)) return std::nullopt;
  const auto& held = s.exchanges.back().command;
  const std::string awaited =
      held == "<no command>" ? std::string("the greeting") : "the reply to '" + held + "'";
  const auto& sent = s.exchanges.back().reply;
  if (!sent.empty() && !s.reply_held) {
    // Something went out, but no reply a client can read (garbage, no code): it waits on.
    return "; in place of " + awaited + " it got a malformed line ('" +
           proto::bounded_text(sent, 60) + "') and was still waiting for a reply (session " + s.id +
           ")";
  }
  std::string text = "; it was waiting for " + awaited + " (session " + s.id + ")";
  if (s.reply_held) {
    text += ", which the scenario was holding back: give --timeout more than its delay";
    if (time_scale < 1) {
      char scale[32];
      std::snprintf(scale, sizeof scale, "%g", time_scale);
      text += std::string(" (scaled by --time-scale ") + scale + ")";
    } else {
      text += ", or shrink it with --time-scale";
    }
  } else if (s.hung) {
    // No delay to shrink: the server never answers, as a dead one does not. A mailer whose
    // own timeout is as long as --timeout (60 s is common to both) is cut off before it
    // shows what it does when that timeout ends the wait.
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g s", timeout);
    text +=
        ", which the scenario never sends (it hangs): the mailer must give up by itself "
        "before --timeout (" +
        std::string(limit) +
        "; if its own read timeout is as long or longer, give --timeout more to see what "
        "it does when that ends the wait)";
  } else if (time_scale >= 1) {
    text +=
        ", and the scenario's delays run at full length: shrink them with --time-scale "
        "or give --timeout more";
  }
  return text;
}

// The newest session of the killed run had every reply out, so the command was the one silent:
// where it stopped ("" when the session was closing, with QUIT or a 421).
std::string silent_client(const capture::session_summary& s,
                          std::chrono::system_clock::time_point killed_at) {
  const auto closing = [](const capture::exchange& x) { return x.code == 421; };
  if (s.ended < killed_at) return after_last_session(s, killed_at);
  if (s.quit || s.exchanges.empty() ||
      std::any_of(s.exchanges.begin(), s.exchanges.end(), closing)) {
    return {};
  }
  const auto& last = s.exchanges.back().command;
  const auto& got = s.closed_in_data_after;
  if (s.exchanges.back().code == 354 && !got.starts_with("0 ")) {
    // In the message text: the reply to DATA is not where it stopped.
    std::string text = "; it stopped in the middle of the message text" +
                       (got.empty() ? std::string() : ", " + got + " into it,") +
                       " and sent no more (session " + s.id + ")";
    // The classic cause: a mailer that ends its lines with LF alone believes it ended the
    // data with "\n.\n" and waits for the reply that never comes.
    if (s.bare_line_ends > 0 && s.first_bare_line_end.starts_with("bare_lf")) {
      text += "; its text had a bare LF (" + s.first_bare_line_end +
              "), and a line \".\" after one does not end the data: only CRLF \".\" CRLF "
              "does (RFC 5321 4.1.1.4)";
    }
    return text;
  }
  // Busy to the end: not a mailer waiting, but one going round a loop (a refused STARTTLS
  // tried again and again on the same connection): many commands, the last one at the kill.
  constexpr std::size_t loop_commands = 20;
  const double quiet = std::chrono::duration<double>(killed_at - s.exchanges.back().at).count();
  if (last != "<no command>" && s.exchanges.size() >= loop_commands && quiet < 0.1) {
    char when[64];
    std::snprintf(when, sizeof when, "%.3f s before the kill", std::max(quiet, 0.0));
    return "; it was still sending commands: its last, '" + proto::bounded_text(last, 60) +
           "', came " + when + " (session " + s.id +
           "), so it was going round a loop rather than waiting";
  }
  return "; it had sent nothing since the " +
         (last == "<no command>" ? std::string("greeting") : "reply to '" + last + "'") +
         " (session " + s.id + ")";
}

}  // namespace

// A command killed while the server held back a reply (a scenario's delay, a hook that
// sleeps) was not necessarily too slow itself: say what it waited for.
std::string waiting_for_the_server(const script::run_outcome& run, double time_scale,
                                   double timeout,
                                   std::chrono::system_clock::time_point killed_at) {
  // The killed run: the last to start before the deadline (runs start in order).
  std::size_t killed_run = 0;
  while (killed_run + 1 < run.run_starts.size() && run.run_starts[killed_run + 1] <= killed_at)
    ++killed_run;
  const auto run_start =
      run.run_starts.empty() ? std::chrono::system_clock::time_point{} : run.run_starts[killed_run];
  const auto of_that_run = [&](const capture::session_summary& s) {
    return s.started <= killed_at && s.started >= run_start;
  };
  // Newest first: the session still open when the command was killed.
  for (auto it = run.sessions.rbegin(); it != run.sessions.rend(); ++it) {
    if (!of_that_run(*it)) continue;
    if (auto text = awaited_reply(*it, time_scale, timeout)) return *text;
  }
  // The newest session, still open when the deadline came (it ended after, with the kill).
  const auto newest = std::find_if(run.sessions.rbegin(), run.sessions.rend(), of_that_run);
  if (newest == run.sessions.rend()) {
    if (run.run_starts.size() < 2) return "; it never connected to the server";
    return "; run " + std::to_string(killed_run + 1) + " never connected to the server";
  }
  return silent_client(*newest, killed_at);
}

}  // namespace smtpfault::app
