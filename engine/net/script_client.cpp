#include "net/script_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <map>
#include <memory>
#include <utility>

#include "net/exception_text.hpp"
#include "net/tls_context.hpp"
#include "net/transport.hpp"
#include "proto/reply_stream.hpp"

namespace smtpfault::net {

namespace {

using script::client_op;
using script::op_result;
using steady = std::chrono::steady_clock;
constexpr std::size_t max_logged_lines = 12;
// Replies read ahead of the script at most: a server that floods waits in its own send buffer.
constexpr std::size_t max_ready_replies = 1024;

// How an I/O error reads to a script: "closed", "reset", or the system's words.
std::string classify(const error_code& ec) {
  if (closed_by_peer(ec) || ec == asio::error::broken_pipe) {
    return "closed";
  }
  if (ec == asio::error::connection_reset || ec == asio::error::connection_aborted) return "reset";
  // After a handshake that failed (starttls{may_fail=true}) the connection carries nothing more;
  // OpenSSL's own words for that ("unspecified system error") say nothing to a script.
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == asio::ssl::error::get_stream_category()) {
    return "tls error: " + ec.message();
  }
  return ec.message();
}

op_result failed(std::string error) {
  op_result r;
  r.ok = false;
  r.error = std::move(error);
  return r;
}

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

// Transcript lines for octets sent: one per CRLF-ended line, escaped, long ones shortened.
// A write's lines as the transcript shows them. Their CRLF is left out; a last line without one
// says so when the octets are the script's own (raw("NO") raw("OP\r\n") is one command written
// in two pieces, not two commands), not for a label that stands for them.
std::vector<std::string> sent_lines(std::string_view bytes, bool own_octets) {
  std::vector<std::string> out;
  std::size_t pos = 0, count = 0;
  while (pos < bytes.size()) {
    auto end = bytes.find("\r\n", pos);
    end = end == std::string_view::npos ? bytes.size() : end + 2;
    if (++count <= max_logged_lines) {
      auto line = bytes.substr(pos, end - pos);
      const bool ended = line.ends_with("\r\n");
      if (ended) line.remove_suffix(2);
      out.push_back("C: " + proto::printable(line, 200) +
                    (ended || !own_octets ? "" : " (no CRLF)"));
    }
    pos = end;
  }
  if (count > max_logged_lines) {
    out.push_back("C: ... " + std::to_string(count - max_logged_lines) + " more lines (" +
                  std::to_string(bytes.size()) + " octets in this write)");
  }
  return out;
}

class driver {
 public:
  driver(asio::io_context& ctx, script::client_script& s,
         const std::function<void(int, std::string_view)>& on_line)
      : ctx_(ctx), script_(s), on_line_(on_line) {}

  asio::awaitable<void> run();
  client_run_result result;

 private:
  // Each connection is read as its octets come, not when the script asks, so that the
  // transcript shows what arrived when it arrived (also while the script sleeps, and what it
  // never reads); the script takes the replies from `ready`.
  struct conn {
    explicit conn(asio::io_context& ctx)
        : io(tcp::socket(ctx)),
          arrived(ctx, steady::time_point::max()),
          room(ctx, steady::time_point::max()) {}
    int id = 0;
    transport io;
    proto::reply_stream replies;
    std::deque<proto::reply_stream::result> ready;  // whole replies (or malformed ones) not taken
    asio::steady_timer arrived;  // cancelled when a reply or the end arrives: wakes the script
    asio::steady_timer room;     // cancelled when the script takes a reply: wakes the reader
    unsigned reader = 0;         // the reading that is current; an older one stops (STARTTLS)
    std::unique_ptr<asio::ssl::context> tls;
    std::string host;
    std::string closed;       // "closed" or "reset" once the server has gone
    bool ended_here = false;  // the script closed or reset it: every later call says "closed"
    // Why a write failed for good (the server reset or closed): every later write fails the
    // same at once. The reactor does not try a socket again after EPIPE, so a write would
    // otherwise wait for its deadline.
    std::string write_failed;
  };

  bool finished_early_ = false;  // the script called skip()

  asio::awaitable<op_result> perform(const client_op& op);
  void skip(const client_op& op);
  void end_here(conn& c, bool reset);
  void give_up(std::string why);
  asio::awaitable<op_result> do_connect(const client_op& op);
  asio::awaitable<std::string> open_socket(conn& c, const client_op& op);
  asio::awaitable<op_result> do_handshake(conn& c, const client_op& op);
  asio::awaitable<op_result> do_write(conn& c, const client_op& op);
  asio::awaitable<op_result> do_read(conn& c, const client_op& op);
  asio::awaitable<op_result> do_wait_closed(conn& c, const client_op& op);
  asio::awaitable<bool> pause(std::chrono::milliseconds d);
  asio::awaitable<std::string> write_until(conn& c, std::string_view bytes, steady::time_point dl,
                                           std::size_t& sent);
  void start_reading(conn& c);
  asio::awaitable<void> read_loop(conn& c, unsigned reader);
  void take_replies(conn& c);
  void note_end(conn& c, const error_code& ec);
  asio::awaitable<bool> wait_for_news(conn& c, steady::time_point deadline);
  steady::time_point deadline_of(const client_op& op) const;
  std::string timeout_text(const client_op& op) const;
  void log(int id, std::string line);
  void log_reply(int id, const proto::reply& r);

  asio::io_context& ctx_;
  script::client_script& script_;
  const std::function<void(int, std::string_view)>& on_line_;
  std::map<int, std::unique_ptr<conn>> conns_;
  bool stopping_ = false;  // the run is over: the closes that follow are its own
  std::vector<std::pair<int, std::string>> ended_;  // for the next result (op_result::ended)
};

void driver::log(int id, std::string line) {
  on_line_(id, line);
  if (id > 0 && id <= static_cast<int>(result.connections.size())) {
    result.connections[id - 1].lines.push_back(std::move(line));
  }
}

void driver::log_reply(int id, const proto::reply& r) {
  std::string wire = proto::to_wire(r);
  std::size_t pos = 0;
  while (pos < wire.size()) {
    auto end = wire.find("\r\n", pos);
    log(id, "S: " + proto::printable(std::string_view(wire).substr(pos, end - pos), 300));
    pos = end + 2;
  }
}

steady::time_point driver::deadline_of(const client_op& op) const {
  auto t = op.timeout.count() > 0 ? op.timeout : script_.options().timeout;
  return steady::now() + t;
}

std::string driver::timeout_text(const client_op& op) const {
  auto t = op.timeout.count() > 0 ? op.timeout : script_.options().timeout;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gs", static_cast<double>(t.count()) / 1000.0);
  return buf;
}

asio::awaitable<void> driver::run() {
  auto start = steady::now();
  auto step = script_.start();
  while (step.st == script::script_step::status::op) {
    op_result r = co_await perform(step.op);
    if (result.how != client_run_result::ending::finished || finished_early_) break;
    r.ended = std::exchange(ended_, {});
    step = script_.resume(r);
  }
  if (step.st == script::script_step::status::failed) {
    result.how = client_run_result::ending::script_error;
    result.error = step.error;
  }
  stopping_ = true;
  for (auto& [id, c] : conns_) {
    c->io.close();
    c->room.cancel();  // a reader waiting for the script to take a reply
  }
  result.seconds = seconds_since(start);
}

asio::awaitable<op_result> driver::perform(const client_op& op) {
  if (op.what == client_op::kind::connect) co_return co_await do_connect(op);
  if (op.what == client_op::kind::sleep) {
    co_await pause(op.timeout);
    co_return op_result{};
  }
  if (op.what == client_op::kind::finish) {
    skip(op);
    co_return op_result{};
  }
  auto it = conns_.find(op.conn);
  if (it == conns_.end()) co_return failed("no such connection");
  if (op.what == client_op::kind::give_up) {
    log(op.conn, "*: " + proto::printable(op.bytes, std::string::npos));  // it quotes a reply
    give_up(op.bytes);
    co_return op_result{};
  }
  conn& c = *it->second;
  switch (op.what) {
    case client_op::kind::write:
      co_return co_await do_write(c, op);
    case client_op::kind::read_reply:
      co_return co_await do_read(c, op);
    case client_op::kind::tls_handshake:
      co_return co_await do_handshake(c, op);
    case client_op::kind::wait_closed:
      co_return co_await do_wait_closed(c, op);
    case client_op::kind::shutdown_send: {
      error_code ec;
      c.io.socket().shutdown(tcp::socket::shutdown_send, ec);
      log(c.id, "*: half-closed (FIN sent, still reading)");
      co_return ec ? failed(classify(ec)) : op_result{};
    }
    case client_op::kind::reset:
      end_here(c, true);
      co_return op_result{};
    default:
      end_here(c, false);
      co_return op_result{};
  }
}

// skip(reason): a step neither passed nor failed, and the script ends there.
void driver::skip(const client_op& op) {
  script::client_step skipped;
  skipped.skipped = true;
  skipped.name = "skipped";
  skipped.detail = op.bytes;
  skipped.where = script_.position();
  skipped.conn = op.conn;
  script_.add_step(std::move(skipped));
  finished_early_ = true;
}

// The target cannot be used (exit 3): why, and the script line that was trying ("cannot connect
// to HOST:PORT: Connection refused, at probe.lua:3").
void driver::give_up(std::string why) {
  result.how = client_run_result::ending::target_error;
  result.error = std::move(why);
  if (auto where = script_.where(); !where.empty()) result.error += ", at " + where;
}

// The script closed or reset the connection: every later call on it says "closed".
void driver::end_here(conn& c, bool reset) {
  if (reset) {
    c.io.reset();
  } else {
    c.io.close();
  }
  c.closed = "closed";
  c.ended_here = true;
  log(c.id,
      reset ? "*: connection reset by the client (RST)" : "*: connection closed by the client");
}

asio::awaitable<bool> driver::pause(std::chrono::milliseconds d) {
  asio::steady_timer timer(ctx_, d);
  auto [ec] = co_await timer.async_wait(as_value);
  co_return !ec;
}

asio::awaitable<op_result> driver::do_connect(const client_op& op) {
  auto owned = std::make_unique<conn>(ctx_);
  conn& c = *owned;
  c.id = static_cast<int>(result.connections.size()) + 1;
  c.host = op.host;
  const std::string where = host_port_text(op.host, op.port);
  result.connections.push_back({c.id, where, {}});
  conns_[c.id] = std::move(owned);
  log(c.id, "*: connecting to " + where + (op.tls ? " (implicit TLS)" : ""));
  std::string err = co_await open_socket(c, op);
  if (err.empty() && op.tls) {
    auto hs = co_await do_handshake(c, op);
    if (!hs.ok) co_return hs;
  }
  if (!err.empty()) {
    log(c.id, "*: " + err);
    if (!op.may_fail) give_up(err);
    co_return failed(err);
  }
  if (!op.tls) start_reading(c);  // over implicit TLS, the handshake started it
  op_result r;
  r.conn = c.id;
  r.tls_version = c.io.tls_version();
  co_return r;
}

asio::awaitable<std::string> driver::open_socket(conn& c, const client_op& op) {
  const std::string where = host_port_text(op.host, op.port);
  const auto r = co_await connect_before(c.io.socket(), op.host, op.port, deadline_of(op));
  using step = connect_result::step;
  if (r.failed == step::resolve) {
    co_return r.timed_out ? "timeout resolving " + op.host + " after " + timeout_text(op)
                          : "cannot resolve " + op.host + ": " + r.ec.message();
  }
  if (r.timed_out) co_return "timeout connecting to " + where + " after " + timeout_text(op);
  const auto cec = r.ec;
  if (cec == asio::error::operation_aborted) {
    // What Asio's connect says when it could not even open a socket: name the real cause when
    // it is this process's descriptor limit, not something of the target's.
    tcp::socket probe(ctx_);
    error_code open_ec;
    probe.open(tcp::v4(), open_ec);
    if (open_ec == asio::error::no_descriptors ||
        open_ec == std::error_code(ENFILE, std::generic_category())) {
      co_return "cannot open a socket to " + where + ": " + open_ec.message();
    }
  }
  if (cec) co_return "cannot connect to " + where + ": " + cec.message();
  error_code ignored;
  auto local = c.io.socket().local_endpoint(ignored);
  log(c.id, "*: connected from local port " + std::to_string(local.port()));
  co_return "";
}

asio::awaitable<op_result> driver::do_handshake(conn& c, const client_op& op) {
  // The plaintext reading stops here; the handshake reads for itself.
  ++c.reader;
  c.io.cancel();
  c.room.cancel();
  std::size_t n = c.replies.discard();
  for (const auto& r : c.ready)
    n += r.st == proto::reply_stream::status::reply ? proto::to_wire(r.reply).size() : 0;
  c.ready.clear();
  if (n) {
    log(c.id, "*: discarded " + std::to_string(n) + " octets received before the TLS handshake");
  }
  const std::string name = op.sni.empty() ? c.host : op.sni;
  c.tls = std::make_unique<asio::ssl::context>(make_client_context(op.verify));
  std::string err;
  if (!op.ca_file.empty()) {
    // The script's mistake, not the target's: exit 2, whatever may_fail says.
    if (auto why = trust_ca_file(*c.tls, op.ca_file); !why.empty()) {
      result.how = client_run_result::ending::script_error;
      result.error = script_.position() + " " + why;  // "file:line: cannot load CA file ..."
      log(c.id, "*: " + why);
      co_return failed(why);
    }
  }
  std::string why;  // the reason alone, for a script that handles the failure
  // The name checked is the one given as sni when it differs from the host connected to.
  const std::string peer = name == c.host ? c.host : c.host + " (as " + name + ")";
  // OpenSSL checks the name itself (as `send` does), so a mismatch is reported as one
  // ("hostname mismatch"), not as asio's "unspecified certificate verification error".
  const auto handshake =
      co_await c.io.client_handshake_before(*c.tls, name, op.verify, deadline_of(op));
  if (!handshake) {
    why = "timed out after " + timeout_text(op);
    err = "TLS handshake with " + peer + " " + why;
  } else if (auto ec = *handshake) {
    why = c.io.tls_verify_error();
    if (why.empty()) why = ec.message();
    err = "TLS handshake with " + peer + " failed: " + why;
  }
  if (!err.empty()) {
    log(c.id, "*: " + err);
    c.closed = "tls failed";  // nothing more goes over it: every later call says so
    if (!op.may_fail) give_up(err);
    co_return failed("tls failed: " + why);
  }
  log(c.id, "*: TLS established " + c.io.tls_version() + " " + c.io.tls_cipher());
  start_reading(c);
  op_result r;
  r.tls_version = c.io.tls_version();
  co_return r;
}

// Adds to `sent` as the octets go, so that a write cut short by its deadline says how far it got.
asio::awaitable<std::string> driver::write_until(conn& c, std::string_view bytes,
                                                 steady::time_point dl, std::size_t& sent) {
  // OpenSSL's words for a write after a failed handshake say nothing, nor does "Bad file
  // descriptor" after the script's own close().
  if (c.closed == "tls failed" || c.ended_here) co_return c.closed;
  if (!c.write_failed.empty()) co_return c.write_failed;
  for (std::size_t done = 0; done < bytes.size();) {
    auto r =
        co_await c.io.write_some_before(asio::buffer(bytes.data() + done, bytes.size() - done), dl);
    if (!r) co_return "timeout";
    const auto& w = *r;
    done += w.bytes;
    sent += w.bytes;
    if (w.ec) {
      c.write_failed = classify(w.ec);
      co_return c.write_failed;
    }
  }
  co_return "";
}

asio::awaitable<op_result> driver::do_write(conn& c, const client_op& op) {
  if (!op.label.empty()) {
    for (auto& l : sent_lines(op.label, false))
      log(c.id, l);
  } else {
    for (auto& l : sent_lines(op.bytes, true))
      log(c.id, op.chunk ? "C(slow): " + l.substr(3) : l);
  }
  op_result r;
  auto start = steady::now();
  const std::size_t step = op.chunk ? op.chunk : op.bytes.size();
  for (std::size_t pos = 0; pos < op.bytes.size(); pos += step) {
    if (pos > 0 && op.every.count() > 0) co_await pause(op.every);
    auto piece = std::string_view(op.bytes).substr(pos, step);
    std::string err = co_await write_until(c, piece, deadline_of(op), r.sent);
    if (!err.empty()) {
      r.ok = false;
      r.error = err;
      log(c.id, "*: write failed after " + std::to_string(r.sent) + " octets: " + err);
      break;
    }
  }
  r.elapsed = seconds_since(start);
  co_return r;
}

void driver::start_reading(conn& c) {
  asio::co_spawn(ctx_, read_loop(c, ++c.reader), [this](std::exception_ptr e) {
    if (auto what = exception_text(e)) {
      result.how = client_run_result::ending::script_error;
      result.error = "internal error: " + *what;
    }
  });
}

// Whole replies from what arrived, into the transcript now and `ready` for the script.
void driver::take_replies(conn& c) {
  for (auto next = c.replies.next(); next.st != proto::reply_stream::status::need_more;
       next = c.replies.next()) {
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
  // The kernel tells of a reset once: when a write met it first, the read sees only the end.
  if (c.closed == "closed" && c.write_failed == "reset") c.closed = "reset";
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
    if (c.ready.size() >= max_ready_replies) {
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
      c.replies.feed(std::string_view(buf, got.bytes));
      take_replies(c);
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
    if (!c.closed.empty()) co_return failed(c.closed);
    if (op.buffered) co_return failed("none");  // nothing whole has come: no wait
    if (co_await wait_for_news(c, deadline)) continue;
    if (c.replies.in_overlong_line()) {
      // Not silence: a line with no end in sight.
      const std::string why = "malformed reply: " + proto::endless_line(c.replies.max_line());
      log(c.id, "S: <" + why + ">");
      co_return failed(why);
    }
    const auto so_far = c.replies.unfinished();
    log(c.id, "*: no reply within " + timeout_text(op) +
                  (so_far.empty() ? "" : " (came so far: " + so_far + ")"));
    co_return failed("timeout");
  }
}

asio::awaitable<op_result> driver::do_wait_closed(conn& c, const client_op& op) {
  const auto start = steady::now();
  const auto deadline = deadline_of(op);
  while (c.closed.empty()) {
    const bool woken = co_await wait_for_news(c, deadline);
    if (!woken) break;
  }
  op_result r;
  r.elapsed = seconds_since(start);
  r.ok = !c.closed.empty();
  r.error = r.ok ? c.closed : "timeout";
  if (!r.ok) log(c.id, "*: still open after " + timeout_text(op));
  co_return r;
}

}  // namespace

client_run_result run_client_script(script::client_script& script,
                                    const std::function<void(int, std::string_view)>& on_line) {
  asio::io_context ctx;
  driver d(ctx, script, on_line);
  const auto start = steady::now();
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  bool done = false;  // a signal handled after the script ended changes nothing
  signals.async_wait([&](error_code ec, int signal) {
    if (ec || done) return;
    d.result.how = client_run_result::ending::interrupted;
    d.result.signal = signal;
    d.result.seconds = seconds_since(start);
    char after[32];
    std::snprintf(after, sizeof after, " after %.2fs", d.result.seconds);
    d.result.error =
        std::string("interrupted by ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + after;
    if (auto where = script.where(); !where.empty()) d.result.error += ", waiting at " + where;
    ctx.stop();
  });
  asio::co_spawn(ctx, d.run(), [&](std::exception_ptr e) {
    done = true;
    signals.cancel();
    if (auto what = exception_text(e)) {
      d.result.how = client_run_result::ending::script_error;
      d.result.error = "internal error: " + *what;
    }
  });
  ctx.run();
  return std::move(d.result);
}

}  // namespace smtpfault::net
