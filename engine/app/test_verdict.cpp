#include "app/test_verdict.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "script/expectations.hpp"

namespace smtpfault::app {

namespace {

// A pass over something the server noted as odd (an 8-bit octet MAIL did not declare, a bare
// CR) that no expectation of the scenario judges: the mailer may meet a server that does. Also
// under a failure that is only how the run ended (a missing QUIT), so that mending that does not
// merely uncover the next finding.
void note_anomalies(scenario_result& r, const std::vector<capture::session_summary>& sessions,
                    const char* also = "") {
  std::size_t count = 0;
  const capture::session_summary* first = nullptr;
  std::vector<std::string> kinds;  // each once: a second kind is not hidden behind the first
  for (const auto& s : sessions) {
    count += s.anomalies;
    if (!first && s.anomalies > 0) first = &s;
    for (const auto& k : s.anomaly_kinds)
      if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  }
  if (!first) return;
  std::string of_kinds;
  if (kinds.size() > 1) {
    for (std::size_t i = 0; i < kinds.size(); ++i)
      of_kinds += (i == 0 ? " (" : i + 1 == kinds.size() ? " and " : ", ") + kinds[i];
    of_kinds += ")";
  }
  r.reason += std::string("; the server ") + also + "noted " +
              (count == 1 ? std::string("an anomaly: ")
                          : std::to_string(count) + " anomalies" + of_kinds + ", the first: ") +
              first->first_anomaly + " (session " + first->id + ", transcript line " +
              std::to_string(first->first_anomaly_at) + ")";
}

// A pass over credentials sent in the clear where the server offered STARTTLS: no expectation
// of most scenarios judges it (starttls-stripped and the auth ones do), and a mailer that
// requires TLS would not have sent them (libESMTP goes on in plaintext when it cannot load its
// CA file).
void note_plaintext_auth(scenario_result& r,
                         const std::vector<capture::session_summary>& sessions) {
  for (const auto& s : sessions) {
    if (s.implicit_tls || !s.starttls_advertised) continue;
    for (const auto& x : s.exchanges) {
      if (x.verb != "AUTH" || (s.tls_at != 0 && x.line > s.tls_at)) continue;
      r.reason += "; AUTH went in plaintext in session " + s.id + " (transcript line " +
                  std::to_string(x.line) +
                  ") although EHLO offered STARTTLS: a mailer that requires TLS would not send it";
      return;
    }
  }
}

// RFC 5321 4.5.3.2's least time a client waits for a reply, by what the reply answers; 0 where
// it names none.
int least_wait_seconds(const capture::exchange& x, const char*& section) {
  if (x.command == "<no command>") return section = "4.5.3.2.1", 300;
  if (x.verb == "MAIL") return section = "4.5.3.2.2", 300;
  if (x.verb == "RCPT") return section = "4.5.3.2.3", 300;
  if (x.verb == "DATA") return section = "4.5.3.2.4", 120;
  if (x.command == "<end of data>") return section = "4.5.3.2.6", 600;
  return 0;
}

// The first session the client closed while the scenario held back a reply, sooner than RFC
// 5321 asks it to wait for that reply: a mailer's timeout too short for a slow server.
std::optional<std::string> gave_up_waiting(const std::vector<capture::session_summary>& sessions) {
  for (const auto& s : sessions) {
    if (!s.reply_held || !s.client_closed || s.exchanges.empty()) continue;
    const auto& held = s.exchanges.back();
    const char* section = "";
    const int least = least_wait_seconds(held, section);
    const double waited = std::chrono::duration<double>(s.ended - held.at).count();
    if (least == 0 || waited >= least) continue;
    const std::string what = held.command == "<no command>" ? std::string("the greeting")
                                                            : "the reply to '" + held.command + "'";
    char text[160];
    std::snprintf(text, sizeof text, " %.1f s into the wait for ", waited);
    std::string gave_up = "the client gave up waiting: it closed session " + s.id + text + what +
                          ", which the scenario held back; RFC 5321 " + section +
                          " has a client wait " + std::to_string(least / 60) + " minutes for it";
    // A mailer that sends the text again after such a timeout makes copies of the message at
    // a server that was only slow (postal's one message sent nine times).
    std::size_t texts = 0;
    if (held.command == "<end of data>") {
      for (const auto& t : sessions)
        texts += capture::texts_without_250(t);
    }
    if (texts > 1) {
      gave_up += "; it sent the message text " + std::to_string(texts) +
                 " times in all, each left without a 250: a server that was only slow would "
                 "deliver " +
                 std::to_string(texts) + " copies";
    }
    return gave_up;
  }
  return std::nullopt;
}

// The first TLS handshake that failed because client and server share no protocol version or
// cipher suite, because what came was no TLS at all, or because the client refused the server's
// own certificate (with an alert, or by closing during or right after the handshake), when no
// session went on past the handshake and none went on to a transaction in plaintext: none of
// the scenario's faults does that (a certificate it made bad is marked as such), so it is the
// mailer's TLS (an old library, a plaintext client after STARTTLS, a CA it was not given), and
// it stopped the mailer before the scenario could test anything. min_version: tls.min_version,
// the oldest the server takes; test_ca: the certificate is the bundled test CA's, in
// $SMTP_CA_FILE.
struct tls_stop {
  std::string where;    // the handshake, or the session closed after it
  std::string meaning;  // the likely cause, and what to do about it
};

// A failed handshake's error as OpenSSL words it, and what it means for the mailer.
struct tls_cause {
  std::string_view error;
  std::string meaning;
  bool certificate = false;  // the client's refusal, right for a certificate made bad
};

// The causes tls_mismatch knows, in the order they are looked for; closed: what a close during
// or right after the handshake most likely means.
std::vector<tls_cause> tls_causes(const std::string& min_version, bool test_ca,
                                  std::string& closed) {
  const std::string versions = "the client offered no TLS version the server takes (" +
                               min_version + " and later, tls.min_version)";
  const std::string refused = test_ca ? "the client refused the server's certificate: "
                                      : "the client refused the server's certificate (tls.cert): ";
  // "unknown ca" is about the issuer; the other alerts also come of a name the client checks
  // that the certificate does not hold (OpenSSL's clients send "bad certificate" for that).
  const std::string untrusted_ca =
      refused + (test_ca ? "it does not trust the test CA; give the mailer $SMTP_CA_FILE to "
                           "trust (docs/catalogue.md)"
                         : "it does not trust its issuer");
  const std::string issuer_or_name =
      test_ca ? "it does not trust the test CA, or the name it checks is not one the certificate "
                "holds (localhost, 127.0.0.1, ::1, smtpfault.test), or it matches host names only "
                "and was given an address (Jakarta Mail, Haskell's tls and s-nail do); give the "
                "mailer $SMTP_CA_FILE to trust (docs/catalogue.md says how for each: Node.js "
                "takes it from NODE_EXTRA_CA_CERTS set inside the command, Java from a trust "
                "store made of it) and $SMTP_HOST to connect to, or localhost for a client that "
                "matches names only"
              : "it does not trust its issuer, or the name it checks is not in it";
  // A client that checks the certificate itself once OpenSSL is done (Node.js) refuses it by
  // closing, without an alert that would say so.
  const std::string refused_for_issuer_or_name = refused + issuer_or_name;
  closed = "most likely " + refused_for_issuer_or_name;
  return {
      {"unsupported protocol", versions},
      {"version too low", versions},
      {"no shared cipher", "the client offered no cipher suite the server takes"},
      {"wrong version number", "what the client sent was not TLS"},
      {"http request", "what the client sent was not TLS"},
      // The alerts a client sends when it cannot verify a certificate (OpenSSL's names).
      {"alert unknown ca", untrusted_ca, true},
      {"alert bad certificate", refused_for_issuer_or_name, true},
      {"alert certificate unknown", refused_for_issuer_or_name, true},
      {"alert unsupported certificate", refused_for_issuer_or_name, true},
      {"alert certificate expired", refused_for_issuer_or_name, true},
      {capture::closed_after_certificate, closed, true},
  };
}

std::optional<tls_stop> tls_mismatch(const std::vector<capture::session_summary>& sessions,
                                     const std::string& min_version, bool test_ca,
                                     std::optional<clock_time> killed_at) {
  const auto got_on = [](const capture::session_summary& s) {
    return (s.tls_at != 0 && !capture::closed_right_after_tls(s)) ||
           std::any_of(s.exchanges.begin(), s.exchanges.end(),
                       [](const capture::exchange& x) { return x.verb == "MAIL"; });
  };
  // It got there in the end, over TLS or without: a failed first try stopped nothing.
  if (std::any_of(sessions.begin(), sessions.end(), got_on)) return std::nullopt;
  std::string closed;
  const auto causes = tls_causes(min_version, test_ca, closed);
  for (const auto& s : sessions) {
    // The scenario's doing: a certificate it made bad, plaintext it put before the handshake.
    // A refusal there is no mismatch.
    const bool scenario_broke_it = s.tls_certificate_made_bad || s.tls_plaintext_injected;
    for (const auto& c : causes) {
      if (s.tls_failure.find(c.error) == std::string::npos) continue;
      if (c.certificate && scenario_broke_it) continue;
      return tls_stop{"the TLS handshake failed in session " + s.id + " (transcript line " +
                          std::to_string(s.tls_failed_at) + ": " + s.tls_failure + ")",
                      c.meaning};
    }
    // A connection the kill at --timeout closed was not closed by the client's choice: a mailer
    // that hung after the handshake (libESMTP 1.1 under TLS 1.3) refused nothing.
    const bool killed_open = killed_at && s.ended >= *killed_at;
    if (capture::closed_right_after_tls(s) && !scenario_broke_it && !killed_open) {
      return tls_stop{"session " + s.id +
                          " closed right after the TLS handshake (transcript line " +
                          std::to_string(s.tls_at) + "), before any command over TLS",
                      closed};
    }
  }
  return std::nullopt;
}

// The mailer's TLS stopped it: that leads, and what the checks say after it is how a mailer that
// never got in looks to them.
void lead_with(scenario_result& r, const tls_stop& tls) {
  r.outcome = verdict::fail;
  r.kind = std::string(tls_stopped_kind);
  r.tls_stop_cause = tls.meaning;
  r.reason = tls.where + ": " + tls.meaning + "; so nothing past the handshake was exercised (" +
             r.reason + ")";
}

}  // namespace

// The failure decide() put first, when it is a check of what the mailer did rather than one
// that a kill at the timeout explains by itself: an exit status, a message, a QUIT or a
// connection that never came, a retry it never lived to make.
std::string own_failure(const scenario_result& r) {
  const auto* c = leading_check(r);
  if (!c) return "";
  const bool how_it_ended = c->name == "exit" || c->name == "delivered" || c->name == "quit" ||
                            c->name == "connected" || c->name == "retried_after_4xx";
  return how_it_ended ? "" : r.reason;
}

namespace {

bool failing(const script::check_result& c) {
  return !c.passed && !c.waived;
}

// Every check held (or was waived).
void decide_pass(scenario_result& r, const std::vector<capture::session_summary>& sessions,
                 const std::string& tls_min_version, bool test_ca,
                 std::optional<clock_time> killed_at) {
  r.outcome = verdict::pass;
  r.reason = std::string(r.checks.empty() ? command_succeeded : all_held);
  std::string set_aside;
  for (const auto& c : r.checks)
    if (!c.passed) set_aside += (set_aside.empty() ? "" : ", ") + c.name;
  if (!set_aside.empty()) r.reason += " but the waived " + set_aside;
  // Held without meeting the scenario at all: the mailer's TLS stopped it at the handshake,
  // which is for the user to mend (a PASS there is hollow: fixed, the mailer may fail). What
  // a pass would add (how a check read the mailer's stopping) is beside the point then.
  if (auto tls = tls_mismatch(sessions, tls_min_version, test_ca, killed_at)) {
    lead_with(r, *tls);
    return;
  }
  // A scenario whose fault never fired says so on its pass (a message within size-limit's
  // SIZE): the mailer met the expectations without being put to the test. So does one that
  // could not see all it asks for ("not judged": what a mailer told its caller).
  for (const auto& c : r.checks) {
    if (c.name == "check" &&
        (c.detail.starts_with("not exercised") || c.detail.starts_with("not judged"))) {
      r.reason += "; " + c.detail;
    }
  }
  note_anomalies(r, sessions);
  note_plaintext_auth(r, sessions);
}

// The signal that killed a run of the command (not at the timeout), as the headline; "" if none.
// ("connected" already names the exit status of a command that never connected.)
std::string killed_by_signal(const scenario_result& r, const script::check_result& first) {
  for (std::size_t i = 0; first.name != "connected" && i < r.exit_signals.size(); ++i) {
    const int sig = r.exit_signals[i];
    if (sig != 0 && r.exit_codes[i] != -1) {  // -1: killed at the timeout, said elsewhere
      return "the command was killed by signal " + std::to_string(sig) + " (" +
             script::signal_name(sig) + "); what it did before is in the checks";
    }
  }
  return "";
}

// A check that was "not exercised" says the test did not happen, not what went wrong: after
// real failures, and the scenario's own custom check's words (which name the command it
// waited for) before a built-in check's general ones. Lower leads.
int rank(const script::check_result& c) {
  if (c.name == "exit" || c.name == "delivered") return 4;
  if (c.name == "quit") return 3;
  if (c.detail.starts_with("not exercised")) return c.name == "check" ? 1 : 2;
  return 0;
}

}  // namespace

void decide(scenario_result& r, const std::vector<capture::session_summary>& sessions,
            const std::string& tls_min_version, bool test_ca, std::optional<clock_time> killed_at) {
  auto failed = std::find_if(r.checks.begin(), r.checks.end(), failing);
  if (failed == r.checks.end())
    return decide_pass(r, sessions, tls_min_version, test_ca, killed_at);
  r.outcome = verdict::fail;
  // The headline is the most telling failure: a crash first (every check after it is its
  // consequence); then what the mailer did wrong, in the order the checks are listed; then a
  // missing QUIT (hygiene, and often only how a mistake ended); then `exit` and `delivered`,
  // where a mistake ends up rather than what it was.
  if (auto signal = killed_by_signal(r, *failed); !signal.empty()) {
    r.reason = signal;
    return;
  }
  for (auto it = r.checks.begin(); it != r.checks.end(); ++it) {
    if (failing(*it) && rank(*it) < rank(*failed)) failed = it;
  }
  r.reason = failed->name + ": " + failed->detail;
  // A missing QUIT, delivery or exit status is how it ended; a wait cut short is what happened.
  if (rank(*failed) >= 3) {
    if (auto gave_up = gave_up_waiting(sessions)) r.reason = *gave_up + "; " + r.reason;
    note_anomalies(r, sessions, "also ");
  }
  // A client that cannot speak TLS with this server at all failed everything after for that.
  if (auto tls = tls_mismatch(sessions, tls_min_version, test_ca, killed_at)) {
    // The headline says what the quit check's hint would, at more length.
    if (const auto hint = r.reason.find(script::closed_after_handshake_hint);
        hint != std::string::npos) {
      r.reason.erase(hint, script::closed_after_handshake_hint.size());
    }
    lead_with(r, *tls);
  }
}

const script::check_result* leading_check(const scenario_result& r) {
  if (r.outcome != verdict::fail) return nullptr;
  for (const auto& c : r.checks) {
    if (!c.passed && !c.waived && r.reason.starts_with(c.name + ": ")) return &c;
  }
  return nullptr;
}

}  // namespace smtpfault::app
