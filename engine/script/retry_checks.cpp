#include "script/retry_checks.hpp"

#include <algorithm>
#include <cstdio>

#include "proto/command.hpp"
#include "script/transcript_places.hpp"

namespace smtpfault::script {

namespace {

using capture::session_summary;

// A 454 to AUTH (RFC 4954 6) or STARTTLS (RFC 3207 4) is a temporary failure a mailer waits
// out as it does one to RCPT. A 5xx to AUTH is not held against a retry by the built-in checks
// (no_retry_after_5xx): MTAs defer the mail by default (Postfix's smtp_sasl_auth_soft_bounce),
// and a wrong password may be mended meanwhile. auth-535, which is about that refusal, judges a
// retry after it in its own check, and says that an MTA fails it by design.
bool waits_out(const capture::exchange& x, int cls) {
  return cls == 4 && (x.verb == "AUTH" || x.verb == "STARTTLS");
}

// A refusal of how a command was written or when it came (500, 501, 503), not of what it asked:
// no refusal a mailer retries or heeds.
bool syntax_or_sequence(int code) {
  return code == 500 || code == 501 || code == 503;
}

// The first transaction reply of the given class (4 or 5), with its session.
std::pair<const session_summary*, const capture::exchange*> first_reply_of_class(
    const run_outcome& run, int cls) {
  for (const auto& s : run.sessions)
    for (const auto& x : s.exchanges)
      if (x.code / 100 == cls && (is_transaction(x) || waits_out(x, cls)) &&
          !syntax_or_sequence(x.code))
        return {&s, &x};
  return {nullptr, nullptr};
}

// The recipient of "RCPT TO:<a@x.test> NOTIFY=...", as the server read it; "" when unreadable.
std::string recipient_of(const capture::exchange& x) {
  const auto cmd = proto::parse_command(x.command, proto::limits{});
  return cmd ? cmd->path.address() : std::string();
}

// "AUTH PLAIN ****" -> "PLAIN": the mechanism an AUTH exchange named, in upper case.
std::string mechanism_of(const capture::exchange& x) {
  std::string_view rest = x.command;
  const auto space = rest.find(' ');
  if (space == std::string_view::npos) return {};
  rest.remove_prefix(space + 1);
  std::string mechanism(rest.substr(0, rest.find(' ')));
  for (auto& c : mechanism)
    c = proto::ascii_upper(c);
  return mechanism;
}

// The AUTH command an exchange of an AUTH conversation belongs to: a refusal may answer the
// client's response to a challenge ("****"), after the command that named the mechanism.
const capture::exchange& auth_command(const session_summary& s, const capture::exchange* x) {
  while (x != s.exchanges.data() && !proto::istarts_with(x->command, "AUTH "))
    --x;
  return *x;
}

// Whether x, sent after `refused`, tries the transaction again: a MAIL, or after a refused AUTH
// or STARTTLS that command again.
bool tries_again(const capture::exchange& refused, const capture::exchange& x) {
  return x.verb == "MAIL" || (waits_out(refused, refused.code / 100) && x.verb == refused.verb);
}

// A later session of the same run of the command that tried again: one that sent MAIL, or
// with by_recipient after a refused recipient, one that named that recipient again (a retry of
// the others, which were never refused, is no retry of it). After a refusing greeting any new
// connection is a new attempt: it may be refused at the greeting again, before it gets as far as
// MAIL; after a refused AUTH or STARTTLS, one that sent that command again is one too. A later
// run of the command (runs = n) is the test's doing, not a retry.
const session_summary* later_attempt(const run_outcome& run, const session_summary& refused,
                                     const capture::exchange& reply, bool by_recipient) {
  const bool greeting = &reply == &refused.exchanges.front() && reply.command == "<no command>";
  const auto refused_run = run_at(run, reply.at);
  const std::string recipient = by_recipient && reply.verb == "RCPT" ? recipient_of(reply) : "";
  for (const auto& s : run.sessions) {
    if (s.started <= reply.at || run_at(run, s.started) != refused_run) continue;
    if (greeting) return &s;
    for (const auto& x : s.exchanges) {
      if (recipient.empty() ? tries_again(reply, x)
                            : x.verb == "RCPT" && proto::iequals(recipient_of(x), recipient)) {
        return &s;
      }
    }
  }
  return nullptr;
}

// A reply of the class to any command, for saying why first_reply_of_class found none.
const capture::exchange* any_reply_of_class(const run_outcome& run, int cls) {
  for (const auto& s : run.sessions)
    for (const auto& x : s.exchanges)
      if (x.code / 100 == cls) return &x;
  return nullptr;
}

// A retry on the refused connection counts once the client has paused this long (scenario
// time), as a connection cache does when it waits a 4xx out; asking again in the same breath is
// the hammering these scenarios look for.
constexpr double same_connection_pause = 5.0;

// Seconds of scenario time from a to b: real seconds divided by the time scale.
double scenario_seconds(std::chrono::system_clock::time_point a,
                        std::chrono::system_clock::time_point b, double time_scale) {
  return std::chrono::duration<double>(b - a).count() / time_scale;
}

// What a refused session did next on its own connection: the command that tried again after a
// pause, one that tried again at once, the MAIL that went on without a refused AUTH or STARTTLS,
// or an AUTH naming another mechanism.
struct same_connection_retry {
  const capture::exchange* retry = nullptr;
  const capture::exchange* too_soon = nullptr;
  const capture::exchange* skipped = nullptr;
  const capture::exchange* other_mechanism = nullptr;
};

same_connection_retry retry_on_same_connection(const session_summary& s, const capture::exchange* x,
                                               double time_scale) {
  same_connection_retry out;
  if (x->command == "<no command>") return out;  // a refusing greeting: no connection to go on
  bool authenticated = false;                    // after a refused AUTH, with another mechanism
  for (const auto* y = x + 1; y != s.exchanges.data() + s.exchanges.size(); ++y) {
    authenticated = authenticated || (x->verb == "AUTH" && y->verb == "AUTH" && y->code / 100 == 2);
    if (waits_out(*x, 4) && y->verb == "MAIL") {
      // A transaction without what was refused is no retry of it (unless another mechanism
      // succeeded meanwhile, which is said instead).
      if (!authenticated) out.skipped = y;
      return out;
    }
    if (!tries_again(*x, *y)) continue;
    if (x->verb == "AUTH" && y->verb == "AUTH" &&
        mechanism_of(auth_command(s, x)) != mechanism_of(*y)) {
      if (!out.other_mechanism) out.other_mechanism = y;
      continue;
    }
    if (scenario_seconds(x->at, y->at, time_scale) < same_connection_pause) {
      if (!out.too_soon) out.too_soon = y;
      continue;
    }
    out.retry = y;
    return out;
  }
  return out;
}

// Why no retry of a 4xx counts: what the refused connection did instead, else that nothing
// came back.
std::string no_retry_detail(const session_summary& s, const capture::exchange* x,
                            const same_connection_retry& same, double time_scale) {
  const std::string after = "expected a new attempt after '" + capture::quoted_reply(*x) + "' (" +
                            where_reply(s, *x) + "); the client ";
  if (same.skipped) {
    return after + "went on without " + x->verb + " on the same connection ('" +
           same.skipped->command + "', transcript line " + std::to_string(same.skipped->line) +
           ") and never tried " + x->verb + " again";
  }
  if (same.too_soon) {
    char waited[32], pause[32];
    std::snprintf(waited, sizeof waited, "%.2f",
                  scenario_seconds(x->at, same.too_soon->at, time_scale));
    std::snprintf(pause, sizeof pause, "%g", same_connection_pause);
    return after + "asked again on the same connection at once ('" + same.too_soon->command +
           "', " + waited + " s of scenario time later, transcript line " +
           std::to_string(same.too_soon->line) +
           ") and never after a pause, nor on a later connection: a retry on the same "
           "connection counts after a pause of " +
           pause + " s or more (scenario time), as a connection cache waits a 4xx out";
  }
  if (same.other_mechanism) {
    // smtplib's login() goes on to its next mechanism: no retry of the refused one.
    return after + "tried another mechanism on the same connection ('" +
           same.other_mechanism->command + "', transcript line " +
           std::to_string(same.other_mechanism->line) + ") and then never came back";
  }
  return after + "never came back (" +
         (x->command == "<no command>"
              ? std::string("no later connection")
              : "neither that connection nor a later one sent " +
                    (waits_out(*x, 4) ? x->verb + " or MAIL" : std::string("MAIL")) + " again") +
         ")";
}

struct repeated_request {
  const session_summary* session;
  const capture::exchange* refused;
  const capture::exchange* again;
};

// A MAIL or RCPT refused with a 5xx and sent again on the same connection: RFC 5321 4.2.1, the
// client "SHOULD NOT repeat the exact request". The same sender line, or the same recipient
// (in a new transaction too: the recipient was refused, not the transaction). Not "in the same
// sequence" once the client changed what it is (EHLO, STARTTLS, AUTH: a relay refused before
// AUTH may be granted after it), nor after a syntax or sequence refusal.
std::optional<repeated_request> repeated_after_5xx(const run_outcome& run) {
  const auto changes_state = [](const capture::exchange& y) {
    return y.verb == "EHLO" || y.verb == "HELO" || y.verb == "STARTTLS" || y.verb == "AUTH";
  };
  for (const auto& s : run.sessions) {
    for (auto x = s.exchanges.begin(); x != s.exchanges.end(); ++x) {
      if (x->code / 100 != 5 || syntax_or_sequence(x->code)) continue;
      if (x->verb != "MAIL" && x->verb != "RCPT") continue;
      const std::string recipient = x->verb == "RCPT" ? recipient_of(*x) : "";
      for (auto y = x + 1; y != s.exchanges.end() && !changes_state(*y); ++y) {
        if (y->verb != x->verb) continue;
        const bool same = x->verb == "MAIL"
                              ? proto::iequals(y->command, x->command)
                              : !recipient.empty() && proto::iequals(recipient_of(*y), recipient);
        if (same) return repeated_request{&s, &*x, &*y};
      }
    }
  }
  return std::nullopt;
}

}  // namespace

check_result check_retry(const expectations& e, const run_outcome& run) {
  check_result c{"retried_after_4xx", true, ""};
  auto [s, x] = first_reply_of_class(run, 4);
  if (!s) {
    c.passed = false;
    c.detail =
        "not exercised: no 4xx reply to the greeting, STARTTLS, AUTH, MAIL, RCPT, DATA, BDAT or "
        "the "
        "message was sent";
    if (const auto* other = any_reply_of_class(run, 4)) {
      c.detail += " ('" + capture::quoted_reply(*other) + "' to " +
                  (other->verb.empty() ? std::string("a line") : other->verb) + " does not count)";
    }
    return c;
  }
  const session_summary* next = later_attempt(run, *s, *x, false);
  const same_connection_retry same = retry_on_same_connection(*s, x, run.time_scale);
  // The first retry counts: a connection cache waits the 4xx out on the connection it holds
  // (OpenSMTPD, Postfix's, a pooled sender), others come back on a new one.
  if (same.retry && (!next || same.retry->at < next->started)) next = nullptr;
  if (!next && !same.retry) {
    c.passed = false;
    c.detail = no_retry_detail(*s, x, same, run.time_scale);
    return c;
  }
  double delay = scenario_seconds(x->at, next ? next->started : same.retry->at, run.time_scale);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", delay);
  c.detail = "retried after " + std::string(buf) + " s (scenario time) " +
             (next ? "in session " + next->id
                   : "on the same connection (session " + s->id + ", transcript line " +
                         std::to_string(same.retry->line) + ")");
  if ((e.retry_delay_min && delay < *e.retry_delay_min) ||
      (e.retry_delay_max && delay > *e.retry_delay_max)) {
    c.passed = false;
    c.name = "retry_delay";  // it came, but at the wrong time: that is what failed
    if (e.retry_delay_min && e.retry_delay_max) {
      std::snprintf(buf, sizeof buf, "%.2f to %.2f", *e.retry_delay_min, *e.retry_delay_max);
    } else if (e.retry_delay_min) {
      std::snprintf(buf, sizeof buf, "at least %.2f", *e.retry_delay_min);
    } else {
      std::snprintf(buf, sizeof buf, "at most %.2f", *e.retry_delay_max);
    }
    c.detail = "expected a retry delay of " + std::string(buf) + " s, " + c.detail;
  }
  return c;
}

check_result check_no_retry(const run_outcome& run) {
  check_result c{"no_retry_after_5xx", true, ""};
  auto [s, x] = first_reply_of_class(run, 5);
  if (!s) {
    // Passed, as nothing was retried, but said so: a reader must not take it for a client that
    // got a 5xx and stayed away (a mailer that heeded SIZE never gets size-limit's 552).
    c.detail = "no 5xx reply was sent, so nothing was put to the test";
    return c;
  }
  c.detail =
      "no new attempt after '" + capture::quoted_reply(*x) + "' (" + where_reply(*s, *x) + ")";
  if (const session_summary* next = later_attempt(run, *s, *x, true)) {
    c.passed = false;
    c.detail = "expected no retry after '" + capture::quoted_reply(*x) + "' (" +
               where_reply(*s, *x) + "); the client tried again in session " + next->id;
    // Postfix's smtp_skip_5xx_greeting: a policy, told where MTAs are (as auth-535 does).
    if (x == &s->exchanges.front() && x->command == "<no command>") {
      c.detail +=
          " (an MTA defers the message on a 5xx greeting by default, as Postfix does: see \"An "
          "MTA or a queue under test\" in docs/catalogue.md)";
    }
    return c;
  }
  if (const auto again = repeated_after_5xx(run)) {
    c.passed = false;
    c.detail = "expected no retry after '" + capture::quoted_reply(*again->refused) + "' (" +
               where_reply(*again->session, *again->refused) + "); the client sent the same " +
               again->refused->verb + " again on that connection (transcript line " +
               std::to_string(again->again->line) + ")";
  }
  return c;
}

}  // namespace smtpfault::script
