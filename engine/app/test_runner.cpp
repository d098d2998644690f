#include "app/test_runner.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "app/child_process.hpp"
#include "app/server_setup.hpp"
#include "capture/message_store.hpp"
#include "capture/session_analysis.hpp"
#include "control/api_server.hpp"
#include "net/server.hpp"
#include "net/transcript_log.hpp"
#include "net/transport.hpp"
#include "proto/bounded_text.hpp"
#include "proto/duration.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

namespace {

using steady = std::chrono::steady_clock;

// A session's transcript entries the checks see at most. The mock's default (1,000, for
// sessions that never end) would hide the middle of a pooled sender's session from them, and a
// refusal there would never have happened; a mailer run ends, so it can have far more.
constexpr std::size_t checked_entries = 200000;
// Of those, the first and the last shown in the report: a reader wants how it began and ended.
constexpr std::size_t shown_entries = 500;

std::string render_transcript(
    const std::vector<std::shared_ptr<const capture::session_record>>& s) {
  std::string out;
  for (const auto& rec : s) {
    // "000002:20": the session and its line, as a failed check names them ("session 000002,
    // transcript line 20"), so that the line can be found in the sessions run together.
    const auto& entries = rec->entries;
    const std::size_t n = entries.size();
    for (std::size_t i = 0; i < n; ++i) {
      if (i == shown_entries && n > 2 * shown_entries) {
        out += "... " + std::to_string(n - 2 * shown_entries) + " lines of session " +
               rec->facts.session_id + " not shown here (the checks saw them)";
        // Past checked_entries the middle was dropped as it came: the numbers after it count
        // the lines kept, as the checks' do.
        if (rec->dropped > 0) {
          out += ", and " + std::to_string(rec->dropped) +
                 " more dropped among them that not even the checks saw (line numbers after "
                 "that count only the lines kept)";
        }
        out += "\n";
        i = n - shown_entries;
      }
      const auto& e = entries[i];
      const char* tag = e.dir == session::direction::client   ? "C"
                        : e.dir == session::direction::server ? "S"
                                                              : "*";
      out += session::format_timestamp(e.at) + " " + rec->facts.session_id + ":" +
             std::to_string(i + 1) + " " + tag + ": " + session::escape_wire(e.text) + "\n";
    }
  }
  return out;
}

// A server of its own for one scenario: ephemeral loopback ports, one I/O thread, and the HTTP
// API (SMTPFAULT_API) so the command can read messages and steer faults as in docker-compose.
struct scenario_server {
  // store_dir: where its messages are written as well ("" for memory alone).
  explicit scenario_server(std::string store_dir) : store(std::move(store_dir), 100000, 100000) {}

  capture::message_store store;
  net::transcript_log log{net::log_format::none};
  std::unique_ptr<net::server> srv;
  std::unique_ptr<control::api_server> api;
  std::thread thread;

  std::string start(std::shared_ptr<script::scenario> sc, net::tls_contexts& tls,
                    config::settings s) {
    s.listen = {{"127.0.0.1", 0}};
    s.tls_listen = {{"127.0.0.1", 0}};
    s.threads = 1;
    std::string error;
    auto cfg = make_server_config(s, error);
    if (!error.empty()) return error;
    cfg.max_transcript_entries = checked_entries;
    srv = std::make_unique<net::server>(std::move(cfg), tls, store, log);
    const auto opts = sc->options();
    srv->set_scenario(std::move(sc));
    try {
      srv->bind();
      control::api_options defaults;
      api = std::make_unique<control::api_server>(
          control::api_context{*srv, store, std::move(defaults), opts, opts.seed});
      api->bind({boost::asio::ip::make_address("127.0.0.1"), 0});
      api->start();
    } catch (const std::exception& e) {
      return e.what();
    }
    thread = std::thread([this] { srv->run(); });
    return "";
  }
  // The command has exited, so its connections are closed; the server may not have read their
  // ends yet (a slow machine, a sanitizer build). Stopping now would answer them 421 as if the
  // server had ended them, and a client that left without QUIT would pass `quit`.
  void settle(std::chrono::milliseconds most) {
    const auto until = std::chrono::steady_clock::now() + most;
    while (srv && srv->active_connections() > 0 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  void stop() {
    if (!srv) return;
    srv->stop();
    if (thread.joinable()) thread.join();
    if (api) api->stop();
  }
  ~scenario_server() { stop(); }
};

constexpr std::string_view default_user = "mailer@smtpfault.test";
constexpr std::string_view default_password = "smtpfault-secret";

std::vector<std::pair<std::string, std::string>> command_environment(const scenario_server& server,
                                                                     const std::string& name,
                                                                     const test_options& opts) {
  const net::server& srv = *server.srv;
  auto plain = srv.plain_endpoints().front();
  auto tls = srv.tls_endpoints().front();
  std::vector<std::pair<std::string, std::string>> env{
      {"SMTP_HOST", plain.address().to_string()},
      {"SMTP_PORT", std::to_string(plain.port())},
      {"SMTP_TLS_PORT", std::to_string(tls.port())},
      {"SMTP_SERVER", net::endpoint_text(plain)},
      {"SMTPFAULT_API", net::endpoint_text(server.api->local_endpoint())},
      {"SMTPFAULT_SCENARIO", name}};
  if (!opts.ca_file.empty()) env.emplace_back("SMTP_CA_FILE", opts.ca_file);
  // Credentials to log in with, so that a mailer that authenticates only when given them is
  // tested as it is: the first of [auth.users], else a pair like any other (all are taken).
  const auto& users = opts.server.auth_users;
  env.emplace_back("SMTP_USER", users.empty() ? std::string(default_user) : users.front().name);
  env.emplace_back("SMTP_PASSWORD",
                   users.empty() ? std::string(default_password) : users.front().password);
  return env;
}

// The hooks that failed (each distinct error once), else the first custom check that could not
// run.
std::optional<std::string> scenario_error(const script::run_outcome& run,
                                          const std::vector<script::check_result>& checks) {
  if (auto failed = script::failed_hooks(run)) return failed;
  for (const auto& c : checks)
    if (c.script_error) return c.detail;
  return std::nullopt;
}

// A waived check is still run and reported: the reports say what was set aside.
void waive(std::vector<script::check_result>& checks, const std::vector<std::string>& waived) {
  for (auto& c : checks)
    c.waived = std::find(waived.begin(), waived.end(), c.name) != waived.end();
}

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

std::optional<tls_stop> tls_mismatch(const std::vector<capture::session_summary>& sessions,
                                     const std::string& min_version, bool test_ca) {
  const auto got_on = [](const capture::session_summary& s) {
    return (s.tls_at != 0 && !capture::closed_right_after_tls(s)) ||
           std::any_of(s.exchanges.begin(), s.exchanges.end(),
                       [](const capture::exchange& x) { return x.verb == "MAIL"; });
  };
  // It got there in the end, over TLS or without: a failed first try stopped nothing.
  if (std::any_of(sessions.begin(), sessions.end(), got_on)) return std::nullopt;
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
      test_ca ? "it does not trust the test CA, or the name it checks is not one the "
                "certificate holds (localhost, 127.0.0.1, ::1, smtpfault.test), or it matches "
                "host names only and was given an address (Jakarta Mail does); give the mailer "
                "$SMTP_CA_FILE to trust (docs/catalogue.md says how for each: Node.js takes it "
                "from NODE_EXTRA_CA_CERTS set inside the command, Java from a trust store made of "
                "it) and $SMTP_HOST to connect to, or localhost for a client that matches names "
                "only"
              : "it does not trust its issuer, or the name it checks is not in it";
  // A client that checks the certificate itself once OpenSSL is done (Node.js) refuses it by
  // closing, without an alert that would say so.
  const std::string refused_for_issuer_or_name = refused + issuer_or_name;
  const std::string closed = "most likely " + refused_for_issuer_or_name;
  struct cause {
    std::string_view error;
    std::string meaning;
    bool certificate = false;  // the client's refusal, right for a certificate made bad
  };
  const cause causes[] = {
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
  for (const auto& s : sessions) {
    for (const auto& c : causes) {
      if (s.tls_failure.find(c.error) == std::string::npos) continue;
      if (c.certificate && s.tls_certificate_made_bad) continue;
      return tls_stop{"the TLS handshake failed in session " + s.id + " (transcript line " +
                          std::to_string(s.tls_failed_at) + ": " + s.tls_failure + ")",
                      c.meaning};
    }
    if (capture::closed_right_after_tls(s) && !s.tls_certificate_made_bad) {
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

void decide(scenario_result& r, const std::vector<capture::session_summary>& sessions,
            const std::string& tls_min_version, bool test_ca) {
  const auto failing = [](const auto& c) { return !c.passed && !c.waived; };
  auto failed = std::find_if(r.checks.begin(), r.checks.end(), failing);
  if (failed == r.checks.end()) {
    r.outcome = verdict::pass;
    r.reason = std::string(r.checks.empty() ? command_succeeded : all_held);
    std::string set_aside;
    for (const auto& c : r.checks)
      if (!c.passed) set_aside += (set_aside.empty() ? "" : ", ") + c.name;
    if (!set_aside.empty()) r.reason += " but the waived " + set_aside;
    // Held without meeting the scenario at all: the mailer's TLS stopped it at the handshake,
    // which is for the user to mend (a PASS there is hollow: fixed, the mailer may fail). What
    // a pass would add (how a check read the mailer's stopping) is beside the point then.
    if (auto tls = tls_mismatch(sessions, tls_min_version, test_ca)) {
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
    return;
  }
  r.outcome = verdict::fail;
  // The headline is the most telling failure: a crash first (every check after it is its
  // consequence); then what the mailer did wrong, in the order the checks are listed; then a
  // missing QUIT (hygiene, and often only how a mistake ended); then `exit` and `delivered`,
  // where a mistake ends up rather than what it was.
  // ("connected" already names the exit status of a command that never connected.)
  for (std::size_t i = 0; failed->name != "connected" && i < r.exit_signals.size(); ++i) {
    const int sig = r.exit_signals[i];
    if (sig != 0 && r.exit_codes[i] != -1) {  // -1: killed at the timeout, said elsewhere
      r.reason = "the command was killed by signal " + std::to_string(sig) + " (" +
                 script::signal_name(sig) + "); what it did before is in the checks";
      return;
    }
  }
  // A check that was "not exercised" says the test did not happen, not what went wrong: after
  // real failures, and the scenario's own custom check's words (which name the command it
  // waited for) before a built-in check's general ones.
  auto rank = [](const script::check_result& c) {
    if (c.name == "exit" || c.name == "delivered") return 4;
    if (c.name == "quit") return 3;
    if (c.detail.starts_with("not exercised")) return c.name == "check" ? 1 : 2;
    return 0;
  };
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
  if (auto tls = tls_mismatch(sessions, tls_min_version, test_ca)) {
    // The headline says what the quit check's hint would, at more length.
    if (const auto hint = r.reason.find(script::closed_after_handshake_hint);
        hint != std::string::npos) {
      r.reason.erase(hint, script::closed_after_handshake_hint.size());
    }
    lead_with(r, *tls);
  }
}

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

// A command killed while the server held back a reply (a scenario's delay, a hook that
// sleeps) was not necessarily too slow itself: say what it waited for. killed_at: when the
// first command killed at the timeout was gone; sessions of later runs started after it, and
// those of earlier runs before that run started.
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
    const auto& s = *it;
    if (!of_that_run(s)) continue;
    if (s.exchanges.empty() || (s.exchanges.back().code != 0 && !s.reply_held)) continue;
    const auto& held = s.exchanges.back().command;
    const std::string awaited =
        held == "<no command>" ? std::string("the greeting") : "the reply to '" + held + "'";
    const auto& sent = s.exchanges.back().reply;
    if (!sent.empty() && !s.reply_held) {
      // Something went out, but no reply a client can read (garbage, no code): it waits on.
      return "; in place of " + awaited + " it got a malformed line ('" +
             proto::bounded_text(sent, 60) + "') and was still waiting for a reply (session " +
             s.id + ")";
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
  if (std::none_of(run.sessions.begin(), run.sessions.end(), of_that_run)) {
    if (run.run_starts.size() < 2) return "; it never connected to the server";
    return "; run " + std::to_string(killed_run + 1) + " never connected to the server";
  }
  // The newest session, still open when the deadline came (it ended after, with the kill) and
  // not closing (no QUIT, no 421), had every reply out: the command was the one silent.
  for (auto it = run.sessions.rbegin(); it != run.sessions.rend(); ++it) {
    if (!of_that_run(*it)) continue;
    const auto closing = [](const capture::exchange& x) { return x.code == 421; };
    if (it->ended < killed_at) return after_last_session(*it, killed_at);
    if (it->quit || it->exchanges.empty() ||
        std::any_of(it->exchanges.begin(), it->exchanges.end(), closing)) {
      break;
    }
    const auto& last = it->exchanges.back().command;
    const auto& got = it->closed_in_data_after;
    if (it->exchanges.back().code == 354 && !got.starts_with("0 ")) {
      // In the message text: the reply to DATA is not where it stopped.
      std::string text = "; it stopped in the middle of the message text" +
                         (got.empty() ? std::string() : ", " + got + " into it,") +
                         " and sent no more (session " + it->id + ")";
      // The classic cause: a mailer that ends its lines with LF alone believes it ended the
      // data with "\n.\n" and waits for the reply that never comes.
      if (it->bare_line_ends > 0 && it->first_bare_line_end.starts_with("bare_lf")) {
        text += "; its text had a bare LF (" + it->first_bare_line_end +
                "), and a line \".\" after one does not end the data: only CRLF \".\" CRLF "
                "does (RFC 5321 4.1.1.4)";
      }
      return text;
    }
    // Busy to the end: not a mailer waiting, but one going round a loop (a refused STARTTLS
    // tried again and again on the same connection): many commands, the last one at the kill.
    constexpr std::size_t loop_commands = 20;
    const double quiet = std::chrono::duration<double>(killed_at - it->exchanges.back().at).count();
    if (last != "<no command>" && it->exchanges.size() >= loop_commands && quiet < 0.1) {
      char when[64];
      std::snprintf(when, sizeof when, "%.3f s before the kill", std::max(quiet, 0.0));
      return "; it was still sending commands: its last, '" + proto::bounded_text(last, 60) +
             "', came " + when + " (session " + it->id +
             "), so it was going round a loop rather than waiting";
    }
    return "; it had sent nothing since the " +
           (last == "<no command>" ? std::string("greeting") : "reply to '" + last + "'") +
           " (session " + it->id + ")";
  }
  return {};
}

}  // namespace

const script::check_result* leading_check(const scenario_result& r) {
  if (r.outcome != verdict::fail) return nullptr;
  for (const auto& c : r.checks) {
    if (!c.passed && !c.waived && r.reason.starts_with(c.name + ": ")) return &c;
  }
  return nullptr;
}

const char* verdict_name(verdict v) {
  switch (v) {
    case verdict::pass:
      return "PASS";
    case verdict::fail:
      return "FAIL";
    case verdict::error:
      return "ERROR";
    case verdict::skip:
      return "SKIP";
  }
  return "?";
}

scenario_result run_scenario(const std::string& name_or_path, const test_options& opts,
                             net::tls_contexts& tls) {
  scenario_result result;
  result.name = name_or_path;
  const auto started = steady::now();
  script::scenario_options so;
  so.seed = opts.seed;
  so.time_scale = opts.time_scale;
  so.limits.memory_bytes = opts.server.lua_memory;
  so.limits.instructions = opts.server.lua_instructions;
  so.params = scenario_params(opts.server);
  auto loaded = script::scenario::load_named(name_or_path, so);
  if (!loaded) {
    result.reason = loaded.error();
    return result;
  }
  auto sc = std::move(*loaded);
  result.loaded = true;
  result.unread_params = sc->unread_params();
  result.named_params = sc->named_params();
  const auto& expected = sc->expected();
  // serve's store key: each scenario's messages in a folder of its own, STORE/<scenario>, where
  // they keep serve's ids (the process id in each), so that a second run adds to the folder.
  const std::string store_dir =
      opts.server.store.empty() ? std::string()
                                : (std::filesystem::path(opts.server.store) / result.name).string();
  scenario_server server(store_dir);
  if (store_dir.empty()) {
    // The queue ids in the 250 replies come from the seed: the same seed, scenario and client
    // give the same transcript. The store is the run's own and in memory: no collision.
    char prefix[24];
    std::snprintf(prefix, sizeof prefix, "%016llx", static_cast<unsigned long long>(opts.seed));
    server.store.use_id_prefix(prefix);
  }
  if (auto err = server.store.prepare()) {
    result.reason = "cannot write messages to the store: " + *err;
    return result;
  }
  if (auto err = server.start(sc, tls, opts.server); !err.empty()) {
    result.reason = "cannot start the server: " + err;
    return result;
  }
  auto env = command_environment(server, name_or_path, opts);
  const auto timeout = proto::millis_from_seconds(opts.timeout, true);
  bool interrupted = false;  // a run was cut short, or never started: no verdict on the mailer
  std::optional<std::chrono::system_clock::time_point> killed_at;  // the first run's at the timeout
  std::vector<std::chrono::system_clock::time_point> run_starts;
  bool left_processes = false;
  for (unsigned run = 0; run < expected.runs && !(interrupted = interrupting_signal() != 0);
       ++run) {
    if (run > 0 && expected.run_gap > 0) {
      std::this_thread::sleep_for(proto::millis_from_seconds(expected.run_gap * opts.time_scale));
    }
    run_starts.push_back(std::chrono::system_clock::now());
    sc->begin_run(run + 1);
    // The command may have had the scenario loaded again (DELETE /api/v1/sessions): that one
    // serves its sessions now.
    if (auto serving = server.srv->current_scenario(); serving && serving != sc) {
      serving->begin_run(run + 1);
    }
    auto child = run_child(opts.command, env, timeout);
    if (!child.error.empty()) {
      result.reason = child.error;
      return result;
    }
    // When the deadline came: the kill's own closes come after it.
    if (child.exit_code == -1 && !killed_at) killed_at = run_starts.back() + timeout;
    result.exit_codes.push_back(child.exit_code);
    result.exit_signals.push_back(child.signal);
    left_processes = left_processes || child.left_processes;
    if (expected.runs > 1) result.command_output += "--- run " + std::to_string(run + 1) + "\n";
    result.command_output += child.output;
    interrupted = interrupting_signal() != 0;
    if (interrupted) break;
  }
  if (!interrupted) server.settle(std::chrono::seconds(2));
  server.stop();

  script::run_outcome run;
  run.exit_codes = result.exit_codes;
  run.exit_signals = result.exit_signals;
  run.left_processes = left_processes;
  for (const auto& m : server.store.messages())
    run.stored.push_back(m);
  run.time_scale = opts.time_scale;
  run.run_starts = std::move(run_starts);
  auto sessions = server.store.sessions();
  // A record without entries has no start to order by (and would break the sort's ordering).
  std::erase_if(sessions, [](const auto& s) { return s->entries.empty(); });
  std::sort(sessions.begin(), sessions.end(),
            [](const auto& a, const auto& b) { return a->entries[0].at < b->entries[0].at; });
  std::string cut;  // sessions whose middle not even the checks saw
  for (const auto& s : sessions) {
    run.sessions.push_back(capture::summarize(*s));
    if (s->dropped > 0) {
      cut += (cut.empty() ? "" : ", ") + s->facts.session_id + " (" + std::to_string(s->dropped) +
             " lines)";
    }
  }
  // From the running total: the store may have forgotten some.
  run.messages = capture::delivered_of(server.store.stored_total(), run.sessions);
  result.transcript = render_transcript(sessions);
  if (expected.empty()) {
    script::expectations fallback;
    fallback.exit = "success";
    result.checks = script::evaluate(fallback, run);
  } else {
    result.checks = script::evaluate(expected, run);
  }
  // The scenario as the sessions met it: a restart over the API gave it a new state, and its
  // checks see that one (another scenario PUT over the API is not the one under test).
  auto judging = server.srv->current_scenario();
  if (!judging || judging->name() != sc->name()) judging = sc;
  for (auto& c : judging->run_checks(run))
    result.checks.push_back(std::move(c));
  waive(result.checks, opts.waived);
  decide(result, run.sessions, opts.server.tls_min_version, !opts.ca_file.empty());
  if (expected.empty() && result.outcome == verdict::pass) {
    // runs = n alone says how often to run, not what to check.
    result.reason = expected.runs > 1
                        ? "the command succeeded in each of its " + std::to_string(expected.runs) +
                              " runs (the scenario states no expectations besides runs: only "
                              "the exit statuses were checked)"
                        : "the command succeeded (the scenario states no expectations: only its "
                          "exit status was checked)";
  }
  if (std::count(result.exit_codes.begin(), result.exit_codes.end(), -1) > 0) {
    char why[96];
    std::snprintf(why, sizeof why, "timeout: the command was killed after %g s", opts.timeout);
    // What a check found besides, unless it is only how the kill ended the run (an exit status,
    // a message or a QUIT that never came): another run may have gone wrong in its own way.
    const std::string found = own_failure(result);
    result.outcome = verdict::fail;
    result.reason =
        why + waiting_for_the_server(run, opts.time_scale, opts.timeout,
                                     killed_at.value_or(std::chrono::system_clock::now()));
    if (!found.empty()) result.reason += "; also " + found;
  }
  if (!cut.empty()) {
    result.reason += "; judged without the middle of sessions past " +
                     std::to_string(checked_entries) + " transcript lines: " + cut;
  }
  // A hook that failed while the mailer ran, or a check that could not run, is the scenario's
  // fault, not the mailer's.
  if (auto why = scenario_error(run, result.checks)) {
    result.outcome = verdict::error;
    result.reason = "scenario error: " + *why;
  }
  if (interrupted) {
    result.outcome = verdict::error;
    result.reason = interruption();
  }
  result.seconds = std::chrono::duration<double>(steady::now() - started).count();
  return result;
}

}  // namespace smtpfault::app
