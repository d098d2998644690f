#include "net/connection.hpp"

#include <algorithm>
#include <random>
#include <variant>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>

#include "proto/duration.hpp"

namespace smtpfault::net {

namespace {

using sys_clock = std::chrono::system_clock;
using std::chrono::milliseconds;
using namespace asio::experimental::awaitable_operators;

// Lines of pipelined input one session takes before the others on its I/O thread get a turn.
// A read of 64 KiB can hold 10,922 NOOPs, 40-90 ms of work: the other sessions there, new
// connections and a SIGTERM would wait that long. 256 are about 1-2 ms; a client that waits
// for its replies sends a few lines per read and never reaches it.
constexpr std::uint64_t lines_per_turn = 256;

session::session_facts initial_facts(std::string id, std::string client, bool implicit_tls) {
  session::session_facts f;
  f.session_id = std::move(id);
  f.client_address = std::move(client);
  f.implicit_tls = implicit_tls;
  return f;
}

// Rules are matched at connect, at every command and at the end of data, so a session consults
// those points while rules exist even when its scenario has no such hooks. Without rules a
// session need not stop at them (a consultation flushes the replies before it).
const std::uint32_t rule_hooks = session::hook_bit(session::hook::connect) |
                                 session::hook_bit(session::hook::command) |
                                 session::hook_bit(session::hook::message);

session::server_options session_options(const server_config& cfg, const script::scenario* sc,
                                        bool rules) {
  session::server_options o = cfg.session;
  if (sc) o.hooks = sc->hooks();
  static const std::uint64_t random_salt =
      std::random_device{}() * 0x100000000ull + std::random_device{}();
  o.challenge_salt = sc ? sc->options().seed : random_salt;
  if (rules) o.hooks |= rule_hooks;
  return o;
}

}  // namespace

connection::connection(server& srv, tcp::socket socket, bool implicit_tls, std::string id,
                       std::string client, std::shared_ptr<script::scenario> sc)
    : srv_(srv),
      io_(std::move(socket)),
      timer_(io_.socket().get_executor()),
      pause_timer_(io_.socket().get_executor()),
      deadline_(steady::now() + srv.cfg_.idle_timeout),
      // No live sink without a log: a long session past its transcript's cap then makes no lines.
      transcript_(id, srv.cfg_.max_transcript_entries,
                  srv.log_.enabled() ? session::transcript::sink(
                                           [&log = srv.log_](std::string_view sid,
                                                             const session::transcript_entry& e) {
                                             log.write(sid, e);
                                           })
                                     : session::transcript::sink()),
      scenario_(std::move(sc)),
      session_(session_options(srv.cfg_, scenario_.get(), !srv.rules_.empty()),
               initial_facts(id, std::move(client), implicit_tls), transcript_) {
  io_.count_into(&srv.metrics_);
  if (scenario_) {
    binding_ = scenario_->open_session(
        [this](std::string text) { session_.note(std::move(text), sys_clock::now()); });
  }
}

asio::awaitable<void> connection::run(bool over_cap) {
  holds_slot_ = !over_cap;
  // Replies leave when the scenario says: replies to pipelined commands already go out in one
  // write, and Nagle's algorithm would hold a later one (the second of two written apart, a
  // piece of a split or trickled reply) until the client's delayed ACK, up to 40 ms.
  error_code nagle_ec;
  io_.socket().set_option(tcp::no_delay(true), nagle_ec);
  watch();
  session_.note("connect from " + session_.facts().client_address +
                    (session_.facts().implicit_tls ? " (implicit TLS)" : ""),
                sys_clock::now());
  tls_opening opened{.ok = true};
  // Over the cap too: a client of an implicit-TLS port cannot read a 421 sent in plain text.
  if (session_.facts().implicit_tls) opened = co_await open_implicit_tls(over_cap);
  bool ok = opened.ok;
  if (ok) begin_session(over_cap, opened.hook_failed);
  while (ok) {
    if (shutting_down_ && !shutdown_handled_) {
      shutdown_handled_ = true;
      session_.on_shutdown(sys_clock::now());
    }
    if (!co_await perform_actions()) break;
    if (session_.closed()) break;
    if (!in_.empty() && !session_.blocked() && !turn_used_up_) {
      feed({});
      if (session_.has_actions()) continue;
    }
    // shutdown() may have run while this coroutine was suspended on an operation that had
    // already completed, so its cancel() hit nothing: look again before a read it cannot stop.
    if (shutting_down_ && !shutdown_handled_) continue;
    // The one place replies are written: nothing may wait in out_ while the session waits for
    // input (tested first: a coroutine call costs even when there is nothing to write).
    if (!out_.empty()) {
      if (!co_await flush()) break;
    }
    // A flood of pipelined lines: with its replies so far sent (a client that does not read
    // them is held by its own full socket), the thread's other work runs before the rest.
    if (std::exchange(turn_used_up_, false)) {
      co_await asio::post(asio::use_awaitable);
      continue;
    }
    arm_for_input();
    // Only bytes a session cannot consume yet (a partial line) are copied into the connection:
    // idle sessions hold no read buffer.
    auto r = co_await io_.read_available();
    // A read that found input at once cannot be cancelled: input that arrived after shutdown()
    // waits behind the 421, as it would in the socket had the read been cancelled.
    if (shutting_down_ && !shutdown_handled_) continue;
    if (!take_read(r)) break;
  }
  // After QUIT's 221, a 421 or a reply then close: a TLS session ends with close_notify, as a
  // real server's does (a client on OpenSSL 3 reports an "unexpected eof" otherwise).
  if (io_.is_tls() && !client_gone_ && !abrupt_end_ && !hung_) {
    co_await io_.close_tls(std::chrono::milliseconds(100));
  }
  finish();
}

// What a read brought: input, a deadline passed, or the client's end. False when the session
// is over.
bool connection::take_read(const transport::read_view& r) {
  if (!r.ec) {
    // An unsolicited reply waits for the client to be silent that long: input starts over.
    if (unsolicited_ && !r.data.empty()) unsolicited_at_ = steady::now() + unsolicited_->after;
    feed(r.data);
    return true;
  }
  if (shutting_down_) return true;
  if (timed_out_) {
    timed_out_ = false;
    if (hung_) {  // a hang ends silently (no 421) when the idle deadline passes
      session_.note(
          "the server closed the hung connection: the idle timeout (" +
              proto::seconds_text(std::chrono::duration<double>(srv_.cfg_.idle_timeout).count()) +
              " s) passed with the client still waiting",
          sys_clock::now());
      return false;
    }
    on_read_timeout();
    return true;
  }
  session_.on_client_closed(r.ec.message(), sys_clock::now());
  // A TLS client that closed with its own close_notify (a clean end of stream) gets ours back;
  // one that just went away does not.
  client_gone_ = !(io_.is_tls() && r.ec == asio::error::eof);
  return false;
}

// The greeting; or the 421 of a full server; or, when on_starttls failed before an implicit
// handshake, the 451 that a failed hook gets everywhere else.
void connection::begin_session(bool over_cap, bool hook_failed) {
  if (over_cap) {
    session_.reject_busy(sys_clock::now());
  } else if (hook_failed) {
    session_.fail_at_start(sys_clock::now());
  } else {
    session_.start(sys_clock::now());
  }
}

void connection::feed(std::string_view bytes) {
  const auto lines_before = session_.lines_taken();
  if (in_.empty()) {
    std::size_t used = session_.receive(bytes, sys_clock::now(), lines_per_turn);
    in_.assign(bytes.substr(used));
  } else {
    in_.append(bytes);
    std::size_t used = session_.receive(in_, sys_clock::now(), lines_per_turn);
    in_.erase(0, used);
    if (in_.empty() && in_.capacity() > 1024) std::string().swap(in_);
  }
  // Octets left behind a line the session took begin a new line, with a deadline of its own.
  if (session_.lines_taken() != lines_before) line_started_.reset();
  turn_used_up_ = session_.lines_taken() - lines_before >= lines_per_turn;
}

asio::awaitable<bool> connection::perform_actions() {
  for (;;) {
    // A stop that came while an action waited (a delay, a sleeping hook) is answered first.
    if (shutting_down_ && !shutdown_handled_) co_return true;
    auto a = session_.next_action();
    if (!a) break;
    if (auto* r = std::get_if<session::send_reply>(&*a)) {
      if (!r->fault) {
        proto::append_wire(out_, r->reply);
        if (replies_unqueued_ != 0) reply_queued();
      } else if (!co_await send_with_fault(*r)) {
        co_return false;
      } else if (unsolicited_) {
        // Silence counts from the end of a held or trickled reply, not from its command.
        unsolicited_at_ = steady::now() + unsolicited_->after;
      }
    } else if (auto* tls = std::get_if<session::start_tls>(&*a)) {
      if (!co_await upgrade_tls(*tls)) co_return false;
    } else if (std::holds_alternative<session::deliver_message>(*a)) {
      // Persisted before the 250 is queued: nothing acknowledged is ever lost.
      std::string spare, why_not;
      auto stored = srv_.store_.store(std::move(session_.pending_message()), &spare, &why_not,
                                      session_.replies_to_message() > 0);
      if (!spare.empty()) session_.recycle_body(std::move(spare));
      std::optional<std::string> id;
      if (stored) {
        id = stored->id;
        await_reply(std::move(stored), session_.replies_to_message());
      } else {
        session_.note("message not stored: " + why_not, sys_clock::now());
      }
      session_.on_stored(std::move(id), sys_clock::now());
    } else if (auto* c = std::get_if<session::close_connection>(&*a)) {
      if (!co_await flush()) co_return false;
      // Held back, it still ends when the client leaves or the server stops meanwhile.
      if (c->delay.count() > 0) {
        const bool waited = co_await pause(c->delay);
        if (!waited && client_gone_) co_return false;
      }
      if (!end_connection(c->how)) co_return false;
    } else if (auto* h = std::get_if<session::consult_hook>(&*a)) {
      // Replies so far leave before a hook that may sleep. Most hooks decide at once: only one
      // that sleeps costs a coroutine of its own (a frame allocation per command otherwise).
      if (!out_.empty()) {
        if (!co_await flush()) co_return false;
      }
      if (auto sleep = consult(h->which)) {
        co_await finish_sleeping_hook(*sleep);
        if (client_gone_) co_return false;
      }
    } else if (auto* u = std::get_if<session::schedule_unsolicited>(&*a)) {
      unsolicited_ = u->what;
      unsolicited_at_ = steady::now() + u->what.after;
    }
  }
  // Replies wait in out_ until the run loop is about to wait for input, so those to pipelined
  // commands leave in one write (RFC 2920); a close, a hook or a handshake flushes first.
  co_return true;
}

// False when the session is to end now: the server is stopping, or the client left during
// the pause. A client that gave up is not kept, its socket in CLOSE-WAIT, for as long as the
// scenario would have gone on: while nothing waits unread, the pause also wakes when the socket
// turns readable, so a close is noted when it came (a mailer's timeout is measured by it);
// once input waits (an early command, a TLS record), it would stay readable, and the connection
// is looked at once a second instead; every 100 ms for the first two seconds after input came,
// since a close often follows it at once (a TLS client's close_notify, then its FIN). And once
// more at the end, so that what follows (a held reply, a hook's decision) is not written to a
// client that left in the last second.
asio::awaitable<bool> connection::pause(milliseconds d) {
  constexpr auto look_every = std::chrono::seconds(1);
  constexpr auto look_soon = milliseconds(100);
  constexpr auto soon_for = std::chrono::seconds(2);
  if (shutting_down_) co_return false;  // nothing more waits once the server stops
  arm(d + srv_.cfg_.idle_timeout);
  const auto until = steady::now() + d;
  bool watch_input = input_waiting() == 0;
  std::optional<steady::time_point> input_came;
  for (;;) {
    const auto start = steady::now();
    const auto look_in = input_came && start - *input_came < soon_for ? look_soon : look_every;
    pause_timer_.expires_after(
        std::min<steady::duration>(until - start, watch_input ? look_every : look_in));
    bool readable = false;
    if (watch_input) {
      auto woke = co_await (pause_timer_.async_wait(as_value) ||
                            io_.socket().async_wait(tcp::socket::wait_read, as_value));
      readable = woke.index() == 1;
      watch_input = !readable;
      if (readable) input_came = steady::now();
    } else {
      co_await pause_timer_.async_wait(as_value);
    }
    if (shutting_down_) co_return false;
    if (finished_) co_return true;
    const auto now = steady::now();
    if (readable || now - peer_looked_at_ >= look_in || now >= until) {
      peer_looked_at_ = now;
      if (client_left()) {
        session_.on_client_closed("while the server paused", sys_clock::now());
        client_gone_ = true;
        co_return false;
      }
      // Over TLS a close leaves its close_notify unread (Java's sockets send one when a read
      // timeout gives up), perhaps behind commands that cannot be told from it unread
      // (late-reply's RSET after a read timeout). All of it is there: read it now. A close and
      // nothing else is a client that left; commands end the pause, and are read as after it.
      if (io_.is_tls() && io_.peer_closed()) {
        constexpr std::size_t most = 64 * 1024;  // the rest stays in the socket
        co_await io_.read_until_end(in_, most);
        if (in_.empty()) {
          session_.on_client_closed("while the server paused", sys_clock::now());
          client_gone_ = true;
          co_return false;
        }
        session_.note(
            "the client closed its TLS connection while the server paused, after sending more: "
            "the pause ends, and what it sent before is read",
            sys_clock::now());
        co_return true;
      }
      // Input still to answer after the client's FIN: it may be reading the replies (a
      // half-close, as `nc -N` does) or gone; TCP cannot tell. It gets the idle timeout, as a
      // silent client would, not the rest of a delay that may last a century.
      if (!input_ended_at_ && io_.peer_closed()) input_ended_at_ = now;
      if (input_ended_at_ && now - *input_ended_at_ >= srv_.cfg_.idle_timeout) {
        session_.on_client_closed(
            "its input ended, then the idle timeout passed while the "
            "server paused",
            sys_clock::now());
        client_gone_ = true;
        co_return false;
      }
    }
    if (now >= until) co_return true;
  }
}

// A client that closed (FIN or RST) and left nothing unread has given up. One that half-closes
// after sending its commands still has them waiting, and is served.
bool connection::client_left() {
  if (!io_.peer_closed()) return false;
  return input_waiting() == 0;
}

// Octets that came while the greeting was held back: the client spoke first. (Before the
// implicit-TLS port's handshake, what waits is the ClientHello, not an early command.)
void connection::note_early_talker() {
  const auto& facts = session_.facts();
  if (facts.implicit_tls && !facts.tls) return;
  error_code ec;
  const auto waiting = io_.socket().available(ec);
  if (!ec && waiting > 0) session_.note_early_talker(waiting, sys_clock::now());
}

// Input waiting when a held-back reply goes out: a command the client did not wait for the
// reply to send (with PIPELINING a group may do that, RFC 2920; without, or after a read
// timeout of the client's, the late reply answers the wrong command: late-reply), or a TLS
// close. Raw octets: over TLS they cannot be told apart before they are read.
void connection::note_input_while_held() {
  if (const auto waiting = input_waiting(); waiting > 0) {
    session_.note_input_while_held(waiting, sys_clock::now());
  }
}

// Octets the client sent that the session has not taken: read and kept, or still in the socket.
std::size_t connection::input_waiting() {
  error_code ec;
  return in_.size() + io_.socket().available(ec);
}

asio::awaitable<bool> connection::flush() {
  if (out_.empty()) co_return true;
  greeting_sent_ = true;  // the greeting is the first thing written
  arm(shutting_down_
          ? std::max(milliseconds(0), std::chrono::ceil<milliseconds>(shutdown_by_ - steady::now()))
          : srv_.cfg_.idle_timeout);
  auto r = co_await io_.write(asio::buffer(out_));
  out_.clear();
  if (out_.capacity() > 4096) std::string().swap(out_);
  if (r.ec && shutting_down_ && !shutdown_handled_) co_return true;
  if (r.ec) {
    session_.note("write failed: " + r.ec.message(), sys_clock::now());
    co_return false;
  }
  co_return true;
}

void connection::rules_appeared() {
  session_.consult_also(rule_hooks);
}

capture::session_record connection::snapshot() const {
  capture::session_record rec;
  rec.facts = session_.facts();
  rec.entries = transcript_.entries();
  rec.dropped = transcript_.dropped();
  rec.open = true;
  // The transcript has no line for message text as it arrives: a client stuck in the middle
  // of DATA would show nothing after the 354. Said here, as of now, for the open session only.
  // The count is of the text kept: past the size limit no more is kept (the 552 comes at the
  // end), and a refused BDAT chunk being skipped adds nothing.
  if (session_.receiving_text()) {
    rec.entries.push_back({sys_clock::now(), session::direction::event,
                           "receiving the message text: " +
                               std::to_string(session_.text_received()) + " octets kept so far"});
  }
  return rec;
}

void connection::shutdown() {
  shutting_down_ = true;
  shutdown_by_ = steady::now() + milliseconds(500);
  io_.cancel();
  pause_timer_.cancel();
}

void connection::finish() {
  finished_ = true;
  timer_.cancel();
  pause_timer_.cancel();
  if (scenario_ && (scenario_->hooks() & session::hook_bit(session::hook::disconnect))) {
    // Only the hook's side effects (state, counters) matter now: nobody hears a reply.
    auto outcome = scenario_->start(*binding_, session::hook::disconnect, session_);
    // Nobody waits for this session any more: a sleep returns at once, and the rest of the hook
    // runs (an endless loop of sleeps still meets the instruction limit).
    while (outcome.st == script::hook_outcome::status::sleeping) {
      outcome = scenario_->resume(*binding_, session_);
    }
    if (outcome.st == script::hook_outcome::status::failed) note_hook_error(outcome.error);
  }
  if (!receipts_.empty()) mark_unanswered_messages();
  io_.close();
  if (holds_slot_) --srv_.slots_held_;
  // "session ended" reaches the log only once the API can show the session: a test that waits
  // for the line may then ask for the session at once.
  const session::transcript_entry ended{sys_clock::now(), session::direction::event,
                                        "session ended"};
  transcript_.keep(ended);
  capture::session_record rec;
  rec.facts = session_.facts();
  rec.entries = transcript_.take_entries();
  rec.dropped = transcript_.dropped();
  srv_.store_.record_session(std::move(rec));
  transcript_.write_live(ended);
}

}  // namespace smtpfault::net
