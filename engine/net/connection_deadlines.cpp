// A connection's deadlines: idle, a begun command line's, a message text's and an unsolicited
// reply's, all on the one timer that watch() keeps.
#include <algorithm>

#include "net/connection.hpp"

namespace smtpfault::net {

namespace {

using sys_clock = std::chrono::system_clock;
using std::chrono::milliseconds;

}  // namespace

// Silence ends at the idle deadline, or when a pending unsolicited reply is due (the scenario
// asked for that much silence); a begun command line ends at its own deadline if that is
// sooner, so that a client dripping octets cannot hold a line open past command_timeout.
void connection::arm_for_input() {
  time_pending_line();
  time_message_text();
  const auto now = steady::now();
  milliseconds wait = srv_.cfg_.idle_timeout;
  // Rounded up: a timer that fires before unsolicited_at_ would count as an idle timeout.
  if (unsolicited_) wait = std::chrono::ceil<milliseconds>(unsolicited_at_ - now);
  if (line_started_) {
    wait = std::min(wait, std::chrono::ceil<milliseconds>(line_deadline() - now));
  }
  if (text_started_) {
    wait = std::min(wait, std::chrono::ceil<milliseconds>(text_deadline() - now));
  }
  arm(wait);
}

// A command line (or an AUTH response) has begun but not ended: its octets wait in in_, or the
// session is dropping them because the line is over the limit (a drip must not outlive
// command_timeout either way).
bool connection::partial_line() const {
  return session_.waiting_for_line() && (!in_.empty() || session_.discarding_line());
}

std::chrono::steady_clock::time_point connection::line_deadline() const {
  return *line_started_ + srv_.cfg_.command_timeout;
}

void connection::on_read_timeout() {
  if (partial_line() && line_started_ && steady::now() >= line_deadline()) {
    session_.on_command_timeout(sys_clock::now());
    return;
  }
  if (session_.receiving_text() && text_started_ && steady::now() >= text_deadline()) {
    session_.on_data_timeout(sys_clock::now());
    return;
  }
  if (unsolicited_ && steady::now() >= unsolicited_at_) {
    if (session_.on_unsolicited(*unsolicited_, sys_clock::now())) {
      unsolicited_.reset();
    } else {  // not now (inside a message or an AUTH exchange): after the next silence
      unsolicited_at_ = steady::now() + unsolicited_->after;
    }
    return;
  }
  session_.on_idle_timeout(sys_clock::now());
}

// The command deadline runs while the session waits for a begun line: it starts when that is
// first seen, and a line taken or a pause in which the session was not waiting (a hook's
// smtp.sleep, a delivery, a TLS handshake) ends it.
void connection::time_pending_line() {
  if (!partial_line()) {
    line_started_.reset();
  } else if (!line_started_) {
    line_started_ = steady::now();
  }
}

// The idle deadline restarts with every read, so a client dripping its message would be held
// until the message size limit; data_timeout bounds one message text (or BDAT chunk) as a whole.
void connection::time_message_text() {
  if (!session_.receiving_text()) {
    text_started_.reset();
    return;
  }
  // Texts can follow one another within one read (BDAT chunks, pipelined messages): each has
  // its own deadline.
  const auto number = texts_begun();
  if (!text_started_ || number != text_number_) {
    text_started_ = steady::now();
    text_number_ = number;
  }
}

std::size_t connection::texts_begun() const {
  return session_.command_count(proto::verb::data) + session_.command_count(proto::verb::bdat);
}

std::chrono::steady_clock::time_point connection::text_deadline() const {
  return *text_started_ + srv_.cfg_.data_timeout;
}

void connection::arm(milliseconds timeout) {
  auto next = steady::now() + timeout;
  bool sooner = next < deadline_;
  deadline_ = next;
  // Pushing the deadline later costs nothing; only a sooner one needs the timer moved.
  if (sooner) timer_.expires_at(deadline_);
}

void connection::watch() {
  timer_.expires_at(deadline_);
  timer_.async_wait([self = shared_from_this()](error_code) { self->on_timer(); });
}

void connection::on_timer() {
  if (finished_) return;
  if (steady::now() >= deadline_) {
    timed_out_ = true;
    io_.cancel();
    deadline_ = steady::now() + std::chrono::seconds(1);  // time to send the 421
  }
  watch();
}

}  // namespace smtpfault::net
