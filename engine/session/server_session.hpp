// The server side of one SMTP/LMTP session as an I/O-free state machine. The driver feeds it
// received bytes and carries out the actions it returns (write a reply, start TLS, store a
// message, close). Commands go through check -> (hook, later) -> proceed, as in OpenSMTPD.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "fault/action.hpp"
#include "proto/bdat.hpp"
#include "proto/command.hpp"
#include "proto/data_reader.hpp"
#include "proto/line_reader.hpp"
#include "proto/reply.hpp"
#include "proto/sasl.hpp"
#include "session/auth_policy.hpp"
#include "session/envelope.hpp"
#include "session/extensions.hpp"
#include "session/transcript.hpp"

namespace smtpfault::session {

// Points where a scenario may decide what happens (OpenSMTPD's "filter" step).
enum class hook : std::uint8_t {
  connect,
  helo,
  ehlo,
  starttls,
  auth,
  mail,
  rcpt,
  data,
  bdat,
  message,
  command,
  disconnect,  // the last: hook_count follows it
};
inline constexpr std::size_t hook_count = static_cast<std::size_t>(hook::disconnect) + 1;
constexpr std::uint32_t hook_bit(hook h) {
  return 1u << static_cast<unsigned>(h);
}
const char* hook_name(hook h);

struct server_options {
  std::string hostname = "smtpfault.test";
  proto::limits limits;
  bool lmtp = false;
  bool starttls_available = true;  // a certificate is loaded
  extension_set extensions = extension_set::all();
  const auth_policy* auth = nullptr;  // nullptr = accept any credentials
  std::size_t max_errors = 20;        // consecutive errors before 421 and close
  std::uint32_t hooks = 0;            // hook_bit()s the scenario defines
  // Makes CRAM-MD5 challenges differ between runs: the scenario's seed (a replay with the same
  // seed sees the same challenges), or a random number.
  std::uint64_t challenge_salt = 0;
};

// Actions for the driver, in order.
struct send_reply {
  proto::reply reply;
  std::shared_ptr<const fault::action> fault;  // how to deliver it, when a scenario said so
};
struct start_tls {
  fault::starttls_mode mode = fault::starttls_mode::normal;
  fault::certificate_kind certificate = fault::certificate_kind::normal;
  std::string inject;
};
struct close_connection {
  fault::ending how = fault::ending::close_after_reply;  // close, reset or hang
  std::chrono::milliseconds delay{0};  // a close or reset without a reply, held back this long
};
// The message is in pending_message(); the driver stores it and calls on_stored().
struct deliver_message {};
// The driver runs the scenario's hook and answers with on_decision().
struct consult_hook {
  hook which;
};
// A reply to send once the session has been idle for a while (fault::unsolicited_reply).
struct schedule_unsolicited {
  fault::unsolicited_reply what;
};
using action = std::variant<send_reply, start_tls, close_connection, deliver_message, consult_hook,
                            schedule_unsolicited>;

class server_session {
 public:
  using clock = std::chrono::system_clock;

  server_session(server_options opts, session_facts facts, transcript& log);

  // Queues the greeting.
  void start(clock::time_point now);
  // Processes as much of input as it can; returns the octets consumed. Stops early when an
  // action needs the driver first (STARTTLS, delivery, close), or after max_lines lines (so
  // that a driver serving many sessions can take turns): call again with the rest.
  std::size_t receive(std::string_view input, clock::time_point now,
                      std::uint64_t max_lines = UINT64_MAX);

  std::optional<action> next_action();
  bool has_actions() const { return !actions_.empty(); }
  // True while the driver must not feed input (waiting for TLS, a delivery or closing).
  bool blocked() const;

  // Driver callbacks.
  void on_decision(fault::action&& decision, clock::time_point now);
  // False when it cannot be sent now and is to wait for the next silence: one that keeps the
  // session open, while the client is inside a message or an AUTH exchange.
  bool on_unsolicited(const fault::unsolicited_reply& u, clock::time_point now);
  void on_tls_established(std::string version, std::string cipher, clock::time_point now);
  void on_stored(std::optional<std::string> message_id, clock::time_point now);
  message& pending_message() { return pending_; }
  const message& pending_message() const { return pending_; }
  // A body buffer the store no longer needs: the next message is read into it, so a session
  // under load allocates no body (the store hands back what it forgot).
  void recycle_body(std::string buffer) { spare_body_ = std::move(buffer); }

  // Endings the driver decides on: each queues a 421 and a close.
  void reject_busy(clock::time_point now);  // over the connection cap, instead of start()
  // A hook failed before the session could start (implicit TLS): 451 4.3.0, instead of start().
  void fail_at_start(clock::time_point now);
  void on_idle_timeout(clock::time_point now);
  void on_command_timeout(clock::time_point now);  // a command line took too long
  void on_data_timeout(clock::time_point now);     // a message's text took too long
  void on_shutdown(clock::time_point now);
  // The 421 that takes the place of a reply a stop dropped, sent by the driver at once; the
  // session is over, whatever that reply would have done.
  proto::reply shutdown_reply(clock::time_point now);
  // The client went away (end of input, a reset): noted, with how far a message had got.
  void on_client_closed(const std::string& why, clock::time_point now);

  const session_facts& facts() const { return facts_; }
  // How many replies the message just stored gets: one, or over LMTP one per recipient.
  std::size_t replies_to_message() const {
    return opts_.lmtp ? std::max<std::size_t>(pending_rcpts_, 1) : 1;
  }
  // The EHLO keywords the session would advertise now, as the reply's lines after the first.
  std::vector<std::string> advertised_keywords() const;
  // What hooks look at.
  const proto::command& current_command() const { return pending_cmd_; }
  const envelope& current_envelope() const { return env_; }
  // The transaction hook h decides about: on_message's is the message's own, the session's
  // being already cleared for the next one when the message is complete.
  const envelope& hook_envelope(hook h) const { return h == hook::message ? pending_.env : env_; }
  const proto::sasl_credentials& auth_attempt() const { return auth_cred_; }
  std::string_view auth_attempt_mechanism() const;
  std::uint64_t last_chunk_size() const { return last_chunk_size_; }
  bool last_chunk_is_last() const { return bdat_last_; }
  std::size_t command_count(proto::verb v) const { return counts_[static_cast<std::size_t>(v)]; }
  std::size_t messages_accepted() const { return messages_accepted_; }
  // Waiting for a line of the client's: a command, or a response in an AUTH exchange.
  bool waiting_for_line() const { return mode_ == mode::command || mode_ == mode::auth_response; }
  // Reading a message's text: DATA's up to the final dot, or a BDAT chunk's octets.
  bool receiving_text() const { return mode_ == mode::data || mode_ == mode::bdat_chunk; }
  // Octets of the message text received so far in this transaction (BDAT chunks included).
  std::size_t text_received() const { return pending_.data.size(); }
  // Changes whenever current_envelope() may have: MAIL, RCPT, a reset, a message taken.
  std::uint64_t envelope_version() const { return envelope_version_; }
  // Complete input lines taken in command mode so far (commands, AUTH lines, over-long lines).
  std::uint64_t lines_taken() const { return lines_taken_; }
  // An over-long line is being dropped as it arrives: begun, not ended, not buffered.
  bool discarding_line() const { return waiting_for_line() && lines_.discarding(); }
  bool closed() const { return mode_ == mode::closed; }
  void note(std::string event, clock::time_point now);
  // Plaintext that came behind STARTTLS and is dropped before the handshake, unread.
  void note_plaintext_discarded(std::size_t octets, clock::time_point now);
  // Octets came while the greeting was held back (noted once; hooks see s.early_talker).
  void note_early_talker(std::size_t octets, clock::time_point now);
  void note_input_while_held(std::size_t octets, clock::time_point now);
  // From the next command on, these hooks are consulted too (fault rules added meanwhile).
  void consult_also(std::uint32_t hook_bits) { opts_.hooks |= hook_bits; }

 private:
  enum class mode {
    command,
    data,
    bdat_chunk,
    auth_response,
    tls_pending,
    storing,
    consulting,
    hung,
    closed,
  };

  std::size_t receive_command(std::string_view input);
  std::size_t receive_data(std::string_view input);
  std::size_t receive_bdat(std::string_view input);
  std::size_t receive_auth(std::string_view input);
  // The line's verb, as far as it was understood; bare_lf: the line ended in LF alone.
  proto::verb on_line(std::string_view line, bool bare_lf);
  void on_long_line();
  void note_if_pipelined(bool more_behind);
  void note_text_after_data(std::string_view line);
  std::vector<proto::anomaly> note_declaration_anomalies(const envelope& env);
  void dispatch(proto::command&& cmd);
  void on_command_error(const proto::command_failure& f);

  // Hooks (session_hooks.cpp).
  bool wants(hook h) const { return opts_.hooks & hook_bit(h); }
  void consult(hook h);
  void after_command_hook(proto::command&& cmd);
  void run_default(const proto::command& cmd);
  void apply_to_command(const proto::command& cmd, fault::action a);
  bool apply_ending_only(const fault::action& a);
  void apply_greeting(fault::action a);
  void apply_message(fault::action a);
  void apply_auth(fault::action a);
  void apply_bdat(fault::action a);
  void greet();
  void check_credentials();
  void hide_extensions(const fault::action& a);
  void keep_waiting_faults(const fault::action& a, std::optional<proto::verb> answering);

  void do_helo(const proto::command& cmd);
  void do_mail(const proto::command& cmd);
  void do_rcpt(const proto::command& cmd);
  void do_data(const proto::command& cmd);
  void do_bdat(const proto::command& cmd);
  // Reads a refused BDAT's chunk and drops it: its octets are data, never commands. False when
  // the size cannot be read (the session then ends: the chunk cannot be skipped).
  bool skip_bdat_chunk(const proto::command& cmd, bool answered);
  void refused_bdat(const proto::command& cmd);  // by a scenario's or a rule's reply
  void do_starttls(const proto::command& cmd);
  void do_auth(const proto::command& cmd);
  // Whether the EHLO keywords a scenario chose list this mechanism on their AUTH line.
  bool mechanism_advertised(std::string_view name) const;
  void do_help();
  void auth_step(std::string_view response);
  void auth_finish(const proto::sasl_credentials& cred, bool ok);
  void start_message(bool via_bdat);  // pending_ empty, reading into the spare body buffer
  void finish_message();

  bool params_need_ehlo(const proto::command& cmd);
  bool check_mail_params(const proto::command& cmd);
  bool check_rcpt_params(const proto::command& cmd);
  proto::reply ehlo_reply(const std::string& name) const;
  void add_keywords(std::vector<std::string>& lines) const;

  void reply(int code, const char* enhanced, std::string text);
  void reply(proto::reply r);
  void log_reply(const proto::reply& r);
  void log_wire_lines(std::string_view wire);  // one transcript line per CRLF-ended line
  void final_reply(int code, const char* enhanced, std::string text);
  void error_reply(int code, const char* enhanced, std::string text);
  void error_reply(proto::reply r);
  std::size_t line_limit(std::string_view line) const;  // octets with CRLF
  void count_error();  // 20 errors (opts_.max_errors) end the session with 421
  // DATA's or BDAT LAST's refusal of the message, a reply per recipient under LMTP.
  void refuse_message(proto::reply r);
  proto::reply too_big() const;
  proto::reply line_too_long() const;
  void close(fault::ending how = fault::ending::close_after_reply,
             std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void reset_transaction();
  void set_mode(mode m);

  server_options opts_;
  session_facts facts_;
  transcript& log_;
  clock::time_point now_;
  mode mode_ = mode::command;
  std::deque<action> actions_;

  proto::line_reader lines_;
  std::optional<proto::data_reader> data_;
  proto::bdat_reader bdat_;
  bool bdat_last_ = false;
  bool bdat_rejected_ = false;              // chunk is read but the transaction failed
  bool bdat_answered_ = false;              // ... and a scenario's refusal answered it already
  std::optional<proto::bdat_reader> skip_;  // reads a refused chunk
  std::size_t pending_rcpts_ = 0;
  // LMTP replies after the data, per recipient, chosen by a hook (smtp.each_recipient).
  std::vector<std::optional<proto::reply>> each_recipient_;
  // While LMTP answers the data per recipient: a 421 among the replies (the scenario's, for one
  // recipient or for all) closes once the last one is out, not at once.
  bool answering_each_recipient_ = false;
  bool closing_after_each_recipient_ = false;

  bool greeted_ = false;   // HELO/EHLO/LHLO seen
  bool extended_ = false;  // EHLO/LHLO: enhanced codes on
  bool in_transaction_ = false;
  envelope env_;
  message pending_;
  std::string spare_body_;
  std::size_t last_body_size_ = 0;  // of this session's last message, to size the next one
  static constexpr std::size_t body_reserve_limit = 64 * 1024;
  static constexpr std::size_t body_reserve_slack = 4096;
  std::uint64_t envelope_version_ = 0;
  std::uint64_t lines_taken_ = 0;
  std::size_t errors_ = 0;
  bool long_line_is_auth_ = false;
  bool pipelined_noted_ = false;   // "client pipelined commands", once a session
  bool group_end_noted_ = false;   // "... after EHLO, which ends a group", once a session
  bool text_behind_data_ = false;  // the data's end came with more octets behind it
  bool refusing_ = false;          // greeted with 554: only QUIT is served (RFC 5321 3.1)
  std::array<std::size_t, 16> counts_{};
  std::size_t messages_accepted_ = 0;
  std::uint64_t last_chunk_size_ = 0;

  // Hook state: the command waiting for a decision and what the decision changes.
  hook consulting_ = hook::connect;
  proto::command pending_cmd_;
  std::shared_ptr<fault::action> override_;  // taken by the next reply()
  // A BDAT command's fault, for the reply to its chunk once the server has taken it.
  std::shared_ptr<fault::action> chunk_reply_;
  // How on_command shapes the reply to its command (delay, trickle, split), until the specific
  // hook has chosen that reply. By pointer: an action is hundreds of octets, and every idle
  // session would carry one.
  std::unique_ptr<fault::action> command_shaping_;
  void note_data_anomalies(clock::time_point now);
  void note_line_anomalies(std::string_view line);
  void note_anomalies(const std::vector<proto::anomaly>& found, clock::time_point now);
  // "anomaly: nul in the command line at offset 6" (where: "" for a message's text).
  void note_anomaly(const proto::anomaly& a, const char* where, clock::time_point now);
  void reply_for_each_recipient(proto::reply r);
  std::optional<std::vector<std::string>> ehlo_keywords_;
  std::vector<std::string> ehlo_hidden_;
  std::optional<std::string> challenge_override_;
  std::optional<start_tls> tls_override_;
  proto::sasl_credentials auth_cred_;

  // AUTH exchange in progress
  proto::sasl_mechanism auth_mech_ = proto::sasl_mechanism::unknown;
  int auth_step_ = 0;
  std::string auth_user_;
  std::string auth_challenge_;
  bool oauth_error_sent_ = false;  // XOAUTH2: the 334 with the error went out, 535 is next
  std::uint64_t challenges_ = 0;   // CRAM-MD5 challenges sent
};

}  // namespace smtpfault::session
