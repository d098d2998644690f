// Where a connection asks for decisions and carries out the faulty ones: API rules and the
// scenario's hooks (with their sleeps), a reply held back, cut or trickled, the endings, and the
// faults before an implicit-TLS handshake. The plain path (read, answer, flush) is connection.cpp.
#include "net/connection.hpp"

#include <cstdio>

#include "fault/wire.hpp"

namespace smtpfault::net {

namespace {

using sys_clock = std::chrono::system_clock;
using std::chrono::milliseconds;

// The first API fault rule that matches this consultation, if any.
std::optional<fault::action> rule_decision(fault_rules& rules, session::hook h,
                                           session::server_session& s) {
  if (rules.empty()) return std::nullopt;
  // Which phases a rule can match (connect, a command, the message, before an implicit-TLS
  // handshake) is fault_rules' own on_matches: any other hook matches nothing there.
  rule_context c;
  c.phase = h;
  c.command = &s.current_command();
  // At the end of data the envelope has moved into the message waiting for a decision.
  c.envelope = &s.hook_envelope(h);
  c.client_address = s.facts().client_address;
  return rules.take(c);
}

fault::action scenario_failure() {
  fault::action a;
  a.name = "scenario error";
  a.reply = proto::reply(451, "4.3.0", "Requested action aborted: scenario error");
  a.end = fault::ending::close_after_reply;
  return a;
}

}  // namespace

// The decision at a hook point: a matching API rule, else the scenario's hook, else the default.
// Returns how long a hook that went to sleep sleeps, for finish_sleeping_hook to go on with.
std::optional<std::chrono::milliseconds> connection::consult(session::hook h) {
  // A STARTTLS command met its rules at the command phase already; the starttls phase is the
  // implicit-TLS port's, before its handshake (implicit_tls_faults).
  auto ruled =
      h == session::hook::starttls ? std::nullopt : rule_decision(srv_.rules_, h, session_);
  if (ruled) {
    srv_.metrics_.rules_fired.add();
    srv_.metrics_.count_fault(*ruled);
    session_.on_decision(std::move(*ruled), sys_clock::now());
    return std::nullopt;
  }
  if (!scenario_ || !(scenario_->hooks() & session::hook_bit(h))) {
    session_.on_decision({}, sys_clock::now());
    return std::nullopt;
  }
  auto outcome = scenario_->start(*binding_, h, session_);
  if (outcome.st == script::hook_outcome::status::sleeping) return outcome.sleep;
  decide(std::move(outcome));
  return std::nullopt;
}

asio::awaitable<void> connection::finish_sleeping_hook(milliseconds sleep) {
  auto outcome = co_await sleep_through(sleep);
  if (outcome) {
    decide(std::move(*outcome));
  } else if (!client_gone_) {
    // The server is stopping: its 421 answers instead. The default the hook never chose must
    // not stand in for its decision (a 250 to a recipient it meant to refuse, a message stored
    // that the client never heard was taken).
    session_.note("hook not finished: the server is stopping", sys_clock::now());
  }
}

// Resumes a hook that went to sleep until it decides; nullopt when the client left or the
// server began to stop during a sleep.
asio::awaitable<std::optional<script::hook_outcome>> connection::sleep_through(milliseconds sleep) {
  while (!client_gone_) {
    if (!co_await pause(sleep)) break;
    // on_connect that sleeps, then looks at s.early_talker: the postscreen way.
    if (!greeting_sent_) note_early_talker();
    auto next = scenario_->resume(*binding_, session_);
    if (next.st != script::hook_outcome::status::sleeping) co_return next;
    sleep = next.sleep;
  }
  co_return std::nullopt;
}

void connection::note_hook_error(const std::string& error) {
  srv_.metrics_.lua_errors.add();
  session_.note("scenario error: " + error, sys_clock::now());
}

void connection::decide(script::hook_outcome&& outcome) {
  if (outcome.interrupted) {
    // As for a hook asleep when the server stops: its 421 answers, not a scenario error.
    session_.note("hook not finished: the server is stopping", sys_clock::now());
    return;
  }
  if (outcome.st == script::hook_outcome::status::failed) {
    note_hook_error(outcome.error);
    outcome.action = scenario_failure();
  }
  srv_.metrics_.count_fault(outcome.action);
  session_.on_decision(std::move(outcome.action), sys_clock::now());
}

// Returns false when the connection is over; a hang keeps it open, reading and ignoring.
bool connection::end_connection(fault::ending how) {
  switch (how) {
    case fault::ending::hang:
      hung_ = true;
      return true;
    case fault::ending::reset:
      session_.note("connection reset (RST)", sys_clock::now());
      io_.reset();
      abrupt_end_ = true;
      return false;
    case fault::ending::close_without_reply:
      abrupt_end_ = true;
      return false;
    default:
      return false;
  }
}

asio::awaitable<bool> connection::send_with_fault(const session::send_reply& r) {
  const fault::action& f = *r.fault;
  if (!co_await flush()) co_return false;
  // The transcript has the reply where the session decided it; when it really leaves is noted
  // here, for anyone timing the client against it.
  const auto decided = steady::now();
  auto note_sent = [&](const char* how) {
    char text[96];
    std::snprintf(text, sizeof text, "reply %s, %.2f s after it was decided", how,
                  std::chrono::duration<double>(steady::now() - decided).count());
    session_.note(text, sys_clock::now());
  };
  bool waited = true;
  if (f.delay.count() > 0) waited = co_await pause(f.delay);
  if (!waited) {
    if (client_gone_) {
      // The transcript has the reply where it was decided: say it never left.
      session_.note("reply not sent: the client left while it was held back", sys_clock::now());
      co_return false;
    }
    if (!shutting_down_) co_return false;
    // The server is stopping: its 421 takes the place of the reply still waiting out its delay
    // (the client must hear something, not a bare close), even of one that would have closed.
    session_.note("reply dropped: the server is stopping", sys_clock::now());
    if (shutdown_handled_) co_return true;  // the 421 is queued behind this reply
    shutdown_handled_ = true;
    proto::append_wire(out_, session_.shutdown_reply(sys_clock::now()));
    co_await flush();
    co_return false;
  }
  if (f.delay.count() > 0) {
    if (!greeting_sent_) {
      note_early_talker();
    } else {
      note_input_while_held();
    }
  }
  fault::append_reply_bytes(out_, r.reply, &f);
  if (replies_unqueued_ != 0) reply_queued();
  auto cuts = fault::write_cuts(f, out_.size());
  if (cuts.empty()) {  // goes out with the next flush
    if (f.delay.count() > 0) note_sent("sent");
    co_return true;
  }
  std::string bytes = std::move(out_);
  out_.clear();
  cuts.push_back(bytes.size());
  const bool written = co_await write_in_pieces(bytes, cuts, f);
  if (!written) co_return false;
  note_sent(f.trickle_bytes > 0 ? "trickled out" : "written in pieces");
  co_return true;
}

// bytes up to each of cuts (the last is bytes.size()), a write each, trickle_every apart when
// the action trickles.
asio::awaitable<bool> connection::write_in_pieces(const std::string& bytes,
                                                  const std::vector<std::size_t>& cuts,
                                                  const fault::action& f) {
  // Each piece its own segment: Nagle's algorithm is off for every connection (run()).
  std::size_t from = 0;
  for (std::size_t i = 0; i < cuts.size() && from < bytes.size(); ++i) {
    std::size_t to = cuts[i];
    bool paused = true;
    if (i > 0 && f.trickle_bytes > 0) paused = co_await pause(f.trickle_every);
    if (!paused) {
      if (!shutting_down_ || client_gone_) co_return false;
      // The server is stopping: the rest goes at once and its 421 follows, so the client reads
      // whole replies, not half a line and a close.
      session_.note("reply hurried: the server is stopping", sys_clock::now());
      to = bytes.size();
    }
    arm(srv_.cfg_.idle_timeout);
    auto w = co_await io_.write(asio::buffer(bytes.data() + from, to - from));
    if (w.ec) {
      session_.note("write failed: " + w.ec.message(), sys_clock::now());
      co_return false;
    }
    from = to;
    greeting_sent_ = true;
  }
  co_return true;
}

// On an implicit-TLS port the handshake comes first, with no STARTTLS to hang a fault on: an API
// rule on STARTTLS with a certificate or abort_handshake, else the scenario's on_starttls, is
// asked before it, and its certificate or abort_handshake apply. A reply has nothing to answer
// and is left out. Nullopt when the hook failed.
asio::awaitable<std::optional<session::start_tls>> connection::implicit_tls_faults() {
  session::start_tls how{};
  fault::action a;
  // An API rule on STARTTLS comes first, as at a STARTTLS command.
  auto ruled = rule_decision(srv_.rules_, session::hook::starttls, session_);
  if (ruled) {
    srv_.metrics_.rules_fired.add();
    a = std::move(*ruled);
  } else if (scenario_ && (scenario_->hooks() & session::hook_bit(session::hook::starttls))) {
    auto outcome = scenario_->start(*binding_, session::hook::starttls, session_);
    if (outcome.st == script::hook_outcome::status::sleeping) {
      auto woken = co_await sleep_through(outcome.sleep);
      // Cut short, the handshake goes ahead without faults: a client that left gets none (the
      // caller sees it gone), and at a stop the 421 then goes out over TLS, which the client
      // of this port can read.
      outcome = woken ? std::move(*woken) : script::hook_outcome{};
    }
    if (outcome.st == script::hook_outcome::status::failed) {
      note_hook_error(outcome.error);
      co_return std::nullopt;
    }
    a = std::move(outcome.action);
  } else {
    co_return how;
  }
  how.certificate = a.certificate;
  if (a.tls_mode == fault::starttls_mode::abort_handshake) how.mode = a.tls_mode;
  if (how.certificate != fault::certificate_kind::normal ||
      how.mode != fault::starttls_mode::normal) {
    srv_.metrics_.count_fault(a);
    session_.note("fault before the implicit TLS handshake: " + a.name, sys_clock::now());
  } else if (!a.is_default()) {
    session_.note("on_starttls before the implicit TLS handshake: " + a.name +
                      " has nothing to act on here (only certificates and abort_handshake do)",
                  sys_clock::now());
  }
  co_return how;
}

}  // namespace smtpfault::net
