#include "net/script_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include "net/exception_text.hpp"
#include "net/script_driver.hpp"
#include "net/tls_context.hpp"

namespace smtpfault::net::script_run {

constexpr std::size_t max_logged_lines = 12;

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

namespace {

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

}  // namespace

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
  stop_all();
  result.seconds = seconds_since(start);
}

void driver::internal_error(std::exception_ptr e) {
  if (auto what = exception_text(e)) {
    result.how = client_run_result::ending::script_error;
    result.error = "internal error: " + *what;
    stop_all();
  }
}

// The kernel tells of a reset once, to the read or the write that meets it first: the end the
// other saw as a plain close was that reset.
void driver::settle_reset(conn& c) {
  if (c.closed == "closed" && c.write_failed == "reset" && !c.ended_here) c.closed = "reset";
}

void driver::stop_all() {
  stopping_ = true;
  for (auto& [id, c] : conns_) {
    c->io.close();
    c->room.cancel();  // a reader waiting for the script to take a reply
  }
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
  if (op.what == client_op::kind::check_ca) {
    if (auto refused = ca_refused(op.conn, op.ca_file)) co_return *refused;
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
  // The script's own file, checked before the target is troubled with a connection.
  if (op.tls) {
    if (auto refused = ca_refused(c.id, op.ca_file)) co_return *refused;
  }
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

// A CA file that cannot be loaded is the script's mistake, not the target's: exit 2, whatever
// may_fail says, at the line that names it.
op_result driver::ca_failure(int conn_id, const std::string& why) {
  result.how = client_run_result::ending::script_error;
  result.error = script_.position() + " " + why;  // "file:line: cannot load CA file ..."
  log(conn_id, "*: " + why);
  return failed(why);
}

std::optional<op_result> driver::ca_refused(int conn_id, const std::string& ca_file) {
  if (ca_file.empty()) return std::nullopt;
  if (auto why = ca_file_problem(ca_file); !why.empty()) return ca_failure(conn_id, why);
  return std::nullopt;
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
    // Checked before the STARTTLS was sent; a file that changed since still fails here.
    if (auto why = trust_ca_file(*c.tls, op.ca_file); !why.empty()) {
      co_return ca_failure(c.id, why);
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
      settle_reset(c);
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

}  // namespace smtpfault::net::script_run

namespace smtpfault::net {

client_run_result run_client_script(script::client_script& script,
                                    const std::function<void(int, std::string_view)>& on_line) {
  asio::io_context ctx;
  script_run::driver d(ctx, script, on_line);
  const auto start = script_run::steady::now();
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  bool done = false;  // a signal handled after the script ended changes nothing
  signals.async_wait([&](error_code ec, int signal) {
    if (ec || done) return;
    d.result.how = client_run_result::ending::interrupted;
    d.result.signal = signal;
    d.result.seconds = script_run::seconds_since(start);
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
    d.internal_error(e);
  });
  ctx.run();
  return std::move(d.result);
}

}  // namespace smtpfault::net
