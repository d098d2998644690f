// Drives one server_session over one transport: the only place where session actions meet
// sockets, and the one executor of fault actions (delays, trickles, splits, raw bytes, resets,
// hangs, STARTTLS faults). One coroutine per connection; one watchdog timer enforces deadlines.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/server.hpp"
#include "net/transport.hpp"
#include "script/scenario.hpp"
#include "session/server_session.hpp"

namespace smtpfault::net {

class connection : public std::enable_shared_from_this<connection> {
 public:
  // client: the peer's address as endpoint_text writes it.
  connection(server& srv, tcp::socket socket, bool implicit_tls, std::string id, std::string client,
             std::shared_ptr<script::scenario> sc);

  asio::awaitable<void> run(bool over_cap);
  // A fault rule now exists: match rules from the next command on. Runs on the connection's
  // thread.
  void rules_appeared();
  // Asks the session to end with 421 4.3.2; runs on the connection's thread.
  void shutdown();
  // The session so far (on the connection's thread).
  capture::session_record snapshot() const;

 private:
  using steady = std::chrono::steady_clock;
  struct tls_opening {
    bool ok = false;           // the handshake succeeded
    bool hook_failed = false;  // on_starttls failed before it
  };

  asio::awaitable<tls_opening> open_implicit_tls(bool over_cap);
  void begin_session(bool over_cap, bool hook_failed);
  void arm_for_input();
  asio::awaitable<bool> perform_actions();
  asio::awaitable<bool> flush();
  asio::awaitable<bool> send_with_fault(const session::send_reply& r);
  asio::awaitable<bool> write_in_pieces(const std::string& bytes,
                                        const std::vector<std::size_t>& cuts,
                                        const fault::action& f);
  asio::awaitable<bool> upgrade_tls(const session::start_tls& how);
  asio::awaitable<std::optional<session::start_tls>> implicit_tls_faults();
  std::optional<std::chrono::milliseconds> consult(session::hook h);
  asio::awaitable<void> finish_sleeping_hook(std::chrono::milliseconds sleep);
  asio::awaitable<std::optional<script::hook_outcome>> sleep_through(
      std::chrono::milliseconds sleep);
  void note_hook_error(const std::string& error);
  void note_early_talker();
  void note_input_while_held();
  std::size_t input_waiting();
  bool client_left();
  void decide(script::hook_outcome&& outcome);
  asio::awaitable<bool> pause(std::chrono::milliseconds d);
  asio::awaitable<void> read_and_reset();
  bool end_connection(fault::ending how);
  void feed(std::string_view bytes);
  bool take_read(const transport::read_view& r);
  void on_read_timeout();
  bool partial_line() const;
  std::chrono::steady_clock::time_point line_deadline() const;  // with line_started_ set
  void time_pending_line();
  void time_message_text();
  std::size_t texts_begun() const;
  std::chrono::steady_clock::time_point text_deadline() const;  // with text_started_ set
  void finish();
  // Stored messages and their replies: noted at their storing, given the octet count their
  // last reply ends at once it is queued, marked in the store if the session ends before that.
  void await_reply(std::shared_ptr<const capture::stored_message> message, std::size_t replies);
  void reply_queued();
  void mark_unanswered_messages();

  void arm(std::chrono::milliseconds timeout);
  void watch();
  void on_timer();

  server& srv_;
  transport io_;
  asio::steady_timer timer_;
  asio::steady_timer pause_timer_;
  steady::time_point deadline_;
  bool timed_out_ = false;
  bool turn_used_up_ = false;  // feed() took lines_per_turn lines: others go before more
  bool holds_slot_ = false;    // counted against max_connections until finish()
  // The client went away (seen during a pause, or a read's error other than a clean TLS end):
  // the session ends, and nothing more is sent, close_notify included.
  bool client_gone_ = false;
  bool greeting_sent_ = false;
  steady::time_point peer_looked_at_ = steady::now();  // by pause()
  // When pause() first saw the client's end of input (its FIN) with input still to answer.
  std::optional<steady::time_point> input_ended_at_;
  bool shutting_down_ = false;
  bool shutdown_handled_ = false;
  // Every write after shutdown() shares one budget, however many batches are still queued:
  // a flooded session must not spend it once per batch.
  steady::time_point shutdown_by_;
  bool finished_ = false;
  bool hung_ = false;
  bool abrupt_end_ = false;  // a fault dropped or reset the connection: no TLS close_notify
  session::transcript transcript_;
  std::shared_ptr<script::scenario> scenario_;
  session::server_session session_;
  std::unique_ptr<script::session_binding> binding_;
  std::optional<fault::unsolicited_reply> unsolicited_;
  steady::time_point unsolicited_at_;
  // When the session began waiting for the line now pending; none while no line is.
  std::optional<steady::time_point> line_started_;
  // When the message text being read began (after DATA's 354, or a BDAT chunk's command line),
  // and which text that is: texts_begun() when it began.
  std::optional<steady::time_point> text_started_;
  std::size_t text_number_ = 0;
  std::string out_;
  std::string in_;
  struct stored_receipt {
    std::shared_ptr<const capture::stored_message> message;
    std::size_t replies_left = 0;  // to be queued (over LMTP, one per recipient)
    std::uint64_t ends_at = 0;     // io_.sent() once the last of them is written
  };
  // Kept for reuse once answered: on a reused connection no allocation per message.
  std::vector<stored_receipt> receipts_;
  std::size_t replies_unqueued_ = 0;  // over all of receipts_
};

}  // namespace smtpfault::net
