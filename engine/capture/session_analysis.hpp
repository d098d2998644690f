// What a finished session's transcript says, in a form expectations can check: each command with
// its reply, TLS and AUTH facts, anomalies. The session logs every command followed by its reply
// (also under pipelining, since it handles commands one at a time), so pairing is by order.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "capture/message_store.hpp"

namespace smtpfault::capture {

struct exchange {
  std::string command;   // the line as sent ("<end of data>" for the reply after the dot)
  std::string verb;      // upper-case first word ("" for the end of data)
  int code = 0;          // reply code, 0 when no reply was sent
  std::string reply;     // the reply's last line
  std::size_t line = 0;  // index of the command in the transcript (1-based, for messages)
  std::chrono::system_clock::time_point at;
  std::string recipient;       // LMTP: the recipient an "<end of data>" reply is for
  std::size_t reply_line = 0;  // index of the reply's last line in the transcript (0: none)
  std::string reply_first{};   // the reply's first line: the same as reply for a one-line reply
};

// A reply as a message quotes it: a multi-line one by its first and last lines, since the
// first usually says what happened and the last may be a link or a footer.
// line_limit: octets kept of each of the two lines.
std::string quoted_reply(const exchange& x, std::size_t line_limit = std::string::npos);

struct session_summary {
  std::string id;
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point ended;
  std::vector<exchange> exchanges;
  bool implicit_tls = false;
  std::size_t tls_at = 0;         // line of "TLS established" (0 = never)
  std::size_t tls_failed_at = 0;  // line of a failed or refused STARTTLS (0 = never)
  std::string tls_failure;        // why the first handshake failed ("timeout", "aborted by ...")
  bool tls_certificate_made_bad = false;  // a handshake had a certificate the scenario made bad
  // The scenario put plaintext behind its 220 to STARTTLS: a client's TLS library that reads it
  // as a record fails the handshake there, which is no refusal of the certificate.
  bool tls_plaintext_injected = false;
  bool quit = false;
  // The client closed or reset the connection, or a reply could not be written to it (else the
  // server ended the session).
  bool client_closed = false;
  bool client_reset = false;  // ... with a reset, as one does that leaves replies unread
  // When it closed in the middle of the message text: how far it got ("300039 octets").
  std::string closed_in_data_after;
  bool pipelined = false;
  std::size_t pipelined_at = 0;  // transcript line of the first note that it pipelined
  // The first command that ends a pipelined group (RFC 2920 3.1: EHLO, DATA, ...) with more
  // commands behind it, "" when none; pipelined_after_at: its transcript line.
  std::string pipelined_after;
  std::size_t pipelined_after_at = 0;
  bool reply_held = false;    // the client left while a reply was held back (a delay, a pause)
  bool hung = false;          // a scenario's smtp.hang(): nothing more was answered
  bool early_talker = false;  // sent octets before a greeting held back by a delay or a sleep
  // The command whose held-back reply the client did not wait for (its first), the line of
  // the note that says so, and the command it sent meanwhile: "", 0 and "" when it always
  // waited (or only closed).
  std::string sent_while_held;
  std::size_t sent_while_held_at = 0;
  std::string sent_while_held_command;
  bool pipelining_advertised = false;
  bool starttls_advertised = false;  // an EHLO reply offered STARTTLS
  std::size_t unstuffed_dots = 0;
  std::size_t long_lines = 0;
  std::size_t first_unstuffed_dot_at = 0;  // transcript line of the first of each (0 = none)
  bool data_ended_at_dot_line = false;     // the first: a line "." ended the data early
  std::size_t first_long_line_at = 0;
  // A bare CR or LF, in a command line or the message text (RFC 5321 2.3.8: only CRLF ends a
  // line); the first one's transcript line and note ("bare_lf at offset 12").
  std::size_t bare_line_ends = 0;
  std::size_t first_bare_line_end_at = 0;
  std::string first_bare_line_end;
  // Every anomaly the server noted (bare line ends, an undeclared 8-bit octet, a NUL, ...), and
  // the first one, for a pass whose scenario judged none of them.
  std::size_t anomalies = 0;
  std::size_t first_anomaly_at = 0;
  std::string first_anomaly;
  std::vector<std::string> anomaly_kinds;  // each kind once, in the order first noted
  std::size_t delivered = 0;
  // Messages stored whose 250 never left: the client went away while it was held back, the
  // server stopped, the write failed. Stored (nothing acknowledged is lost) but not delivered
  // as the client knows it.
  std::size_t unacknowledged = 0;
  std::string scenario_error;  // the first hook that failed: "file:line: message"
};

// How a failed handshake's note ends when the certificate was one a scenario made bad.
inline constexpr std::string_view certificate_made_bad = "; the certificate was the scenario's ";
// The note on plaintext a scenario put behind its 220 to STARTTLS (starttls-injection).
inline constexpr std::string_view plaintext_injected = "injected plaintext after 220: ";
// The note that follows "TLS established" when the certificate was one a scenario made bad
// (and the client took it, or refuses it only now).
inline constexpr std::string_view bad_certificate_established = "TLS certificate: the scenario's ";
// What a failed handshake's note adds when the client went away, without a TLS alert, after
// the server's certificate: how Node.js refuses one (it checks after OpenSSL's handshake).
inline constexpr std::string_view closed_after_certificate =
    "the client closed the connection after the server's certificate, without a TLS alert";

session_summary summarize(const session_record& r);

// Message texts the session took in full that no 250 answered on the wire: the scenario never
// decided the reply (the client left during a hook's smtp.sleep, it closed or hung), or decided
// a 250 that was never written (session_summary::unacknowledged).
std::size_t texts_without_250(const session_summary& s);

// The client closed a session whose TLS handshake completed before it sent a single command
// over TLS (on the implicit-TLS port, after a 220 greeting): with TLS 1.3 a client checks the
// certificate after the server's side is done, so a refused certificate (an alert, or a close)
// comes after "TLS established"; so it does for clients that check only after the handshake
// (Node.js over TLS 1.2). For a fallback it is a failed TLS all the same.
bool closed_right_after_tls(const session_summary& s);

// Of `stored` messages, those delivered as the client knows it: less the ones whose 250 never
// left (session_summary::unacknowledged).
std::uint64_t delivered_of(std::uint64_t stored, const std::vector<session_summary>& sessions);

}  // namespace smtpfault::capture
