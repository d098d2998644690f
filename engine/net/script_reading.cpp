// Reading a client scenario's connections: each as its octets come, so that the transcript
// shows what the server sent when it came; the script takes whole replies from `ready`.
#include <boost/asio/co_spawn.hpp>

#include "net/script_driver.hpp"

namespace smtpfault::net::script_run {

void driver::start_reading(conn& c) {
  asio::co_spawn(ctx_, read_loop(c, ++c.reader),
                 [this](std::exception_ptr e) { internal_error(e); });
}

// Whole replies from what arrived, into the transcript now and `ready` for the script.
void driver::take_replies(conn& c) {
  for (auto next = c.replies.next(); next.st != proto::reply_stream::status::need_more;
       next = c.replies.next()) {
    if (next.st == proto::reply_stream::status::dropped) {
      log(c.id, "*: " + next.error);  // already reported: no reply for the script
      continue;
    }
    if (next.st == proto::reply_stream::status::reply) {
      log_reply(c.id, next.reply);
    } else {
      log(c.id, "S: <malformed reply: " + next.error + ">");
    }
    c.ready.push_back(std::move(next));
  }
}

// The server closed or reset the connection (or it failed): said once, after what came before.
void driver::note_end(conn& c, const error_code& ec) {
  c.closed = classify(ec);
  settle_reset(c);
  log(c.id, c.closed == "reset" ? "*: connection reset by the server"
                                : "*: connection closed by the server");
  if (c.closed == "closed" || c.closed == "reset") ended_.emplace_back(c.id, c.closed);
  if (auto cut = c.replies.unfinished();
      !cut.empty() && (c.closed == "closed" || c.closed == "reset")) {
    log(c.id, "*: the reply was cut short: " + cut + " came before the " +
                  (c.closed == "reset" ? "reset" : "close"));
  }
}

asio::awaitable<void> driver::read_loop(conn& c, unsigned reader) {
  char buf[16 * 1024];
  const auto current = [&] { return reader == c.reader && !c.ended_here && !stopping_; };
  while (current() && c.closed.empty()) {
    const bool full = c.ready.size() >= max_ready_replies;
    if (full && !c.waiting_for_close) {
      co_await c.room.async_wait(as_value);  // until the script takes one (or the run ends)
      continue;
    }
    auto got = co_await c.io.read_some(asio::buffer(buf));
    if (!current()) {
      // Stopped for a TLS handshake: what came meanwhile was sent in plaintext before it.
      if (got.bytes && reader != c.reader && !c.ended_here && !stopping_) {
        log(c.id, "*: discarded " + std::to_string(got.bytes) +
                      " octets received before the TLS handshake");
      }
      break;
    }
    if (got.bytes) {
      // Full, the octets wait in the stream, which keeps at most its own bound of them.
      c.replies.feed(std::string_view(buf, got.bytes));
      if (!full) take_replies(c);
    }
    if (got.ec) note_end(c, got.ec);
    c.arrived.cancel();
  }
}

// Waits until a reply or the end arrives, or the deadline passes (false).
asio::awaitable<bool> driver::wait_for_news(conn& c, steady::time_point deadline) {
  if (steady::now() >= deadline) co_return false;
  c.arrived.expires_at(deadline);
  co_await c.arrived.async_wait(as_value);
  co_return true;  // woken, or at the deadline: the caller looks again either way
}

asio::awaitable<op_result> driver::do_read(conn& c, const client_op& op) {
  const auto deadline = deadline_of(op);
  for (;;) {
    // Octets that came while `ready` was full (wait_closed read on) are replies too.
    if (c.ready.empty()) take_replies(c);
    if (!c.ready.empty()) {
      auto next = std::move(c.ready.front());
      c.ready.pop_front();
      c.room.cancel();
      if (next.st == proto::reply_stream::status::malformed) {
        co_return failed("malformed reply: " + next.error);
      }
      op_result r;
      r.reply = std::move(next.reply);
      co_return r;
    }
    if (op.buffered) co_return failed("none");  // nothing whole has come: no wait
    if (!c.closed.empty()) co_return failed(c.closed);
    // Not silence: a line with no end in sight. Said once, as soon as it passes the bound, not
    // at the deadline; the reads after it wait, with their deadlines, for the rest of the line
    // to be dropped and for the replies after it.
    if (c.replies.overlong_to_report()) {
      const std::string why = "malformed reply: " + c.replies.report_overlong();
      log(c.id, "S: <" + why + ">");
      co_return failed(why);
    }
    if (co_await wait_for_news(c, deadline)) continue;
    const auto so_far = c.replies.unfinished();
    log(c.id, "*: no reply within " + timeout_text(op) +
                  (so_far.empty() ? "" : " (came so far: " + so_far + ")"));
    co_return failed("timeout");
  }
}

asio::awaitable<op_result> driver::do_wait_closed(conn& c, const client_op& op) {
  const auto start = steady::now();
  const auto deadline = deadline_of(op);
  c.waiting_for_close = true;
  c.room.cancel();  // a reader held by a full `ready` reads on
  while (c.closed.empty()) {
    const bool woken = co_await wait_for_news(c, deadline);
    if (!woken) break;
  }
  c.waiting_for_close = false;
  op_result r;
  r.elapsed = seconds_since(start);
  r.ok = !c.closed.empty();
  r.error = r.ok ? c.closed : "timeout";
  if (!r.ok) log(c.id, "*: still open after " + timeout_text(op));
  co_return r;
}

}  // namespace smtpfault::net::script_run
