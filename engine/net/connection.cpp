#include "net/connection.hpp"

#include <array>
#include <variant>

namespace smtpfault::net {

namespace {

using sys_clock = std::chrono::system_clock;

session::session_facts initial_facts(std::string id, const transport& io) {
  session::session_facts f;
  f.session_id = std::move(id);
  f.client_address = io.remote_address();
  return f;
}

// Reads land in a per-thread buffer; only bytes a session cannot consume yet (a partial line)
// are copied into the connection, so idle sessions hold no read buffer at all.
std::array<char, 64 * 1024>& read_buffer() {
  thread_local std::array<char, 64 * 1024> buf;
  return buf;
}

}  // namespace

connection::connection(server& srv, tcp::socket socket, bool implicit_tls, std::string id)
    : srv_(srv),
      io_(std::move(socket)),
      implicit_tls_(implicit_tls),
      timer_(io_.socket().get_executor()),
      deadline_(steady::now() + srv.cfg_.idle_timeout),
      transcript_(id, srv.cfg_.max_transcript_entries,
                  [&log = srv.log_](std::string_view sid, const session::transcript_entry& e) {
                    log.write(sid, e);
                  }),
      session_(srv.cfg_.session, initial_facts(id, io_), transcript_) {}

asio::awaitable<void> connection::run(bool over_cap) {
  watch();
  session_.note("connect from " + session_.facts().client_address +
                    (implicit_tls_ ? " (implicit TLS)" : ""),
                sys_clock::now());
  bool ok = true;
  if (implicit_tls_ && !over_cap) ok = co_await upgrade_tls();
  if (ok) {
    over_cap ? session_.reject_busy(sys_clock::now()) : session_.start(sys_clock::now());
  }
  while (ok) {
    if (shutting_down_ && !shutdown_handled_) {
      shutdown_handled_ = true;
      session_.on_shutdown(sys_clock::now());
    }
    if (!co_await perform_actions() || session_.closed()) break;
    if (!in_.empty() && !session_.blocked()) {
      feed({});
      if (session_.has_actions()) continue;
    }
    arm(srv_.cfg_.idle_timeout);
    auto& buf = read_buffer();
    auto r = co_await io_.read_some(asio::buffer(buf));
    if (!r.ec) {
      feed(std::string_view(buf.data(), r.bytes));
    } else if (shutting_down_) {
      continue;
    } else if (timed_out_) {
      timed_out_ = false;
      session_.on_idle_timeout(sys_clock::now());
    } else {
      session_.note("client closed the connection (" + r.ec.message() + ")", sys_clock::now());
      break;
    }
  }
  finish();
}

void connection::feed(std::string_view bytes) {
  if (in_.empty()) {
    std::size_t used = session_.receive(bytes, sys_clock::now());
    in_.assign(bytes.substr(used));
    return;
  }
  in_.append(bytes);
  std::size_t used = session_.receive(in_, sys_clock::now());
  in_.erase(0, used);
  if (in_.empty() && in_.capacity() > 1024) std::string().swap(in_);
}

asio::awaitable<bool> connection::perform_actions() {
  while (auto a = session_.next_action()) {
    if (auto* r = std::get_if<session::send_reply>(&*a)) {
      proto::append_wire(out_, r->reply);
    } else if (std::holds_alternative<session::start_tls>(*a)) {
      if (!co_await flush() || !co_await upgrade_tls()) co_return false;
    } else if (std::holds_alternative<session::deliver_message>(*a)) {
      // Persisted before the 250 is queued: nothing acknowledged is ever lost.
      auto id = srv_.store_.store(std::move(session_.pending_message()));
      session_.on_stored(id, sys_clock::now());
    } else if (std::holds_alternative<session::close_connection>(*a)) {
      co_await flush();
      co_return false;
    }
  }
  co_return co_await flush();
}

asio::awaitable<bool> connection::flush() {
  if (out_.empty()) co_return true;
  arm(shutting_down_ ? std::chrono::milliseconds(500) : srv_.cfg_.idle_timeout);
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

asio::awaitable<bool> connection::upgrade_tls() {
  arm(srv_.cfg_.tls_handshake_timeout);
  auto ec = co_await io_.server_handshake(srv_.tls_);
  if (ec) {
    session_.note("TLS handshake failed: " + (timed_out_ ? std::string("timeout") : ec.message()),
                  sys_clock::now());
    co_return false;
  }
  session_.on_tls_established(io_.tls_version(), io_.tls_cipher(), sys_clock::now());
  co_return true;
}

void connection::shutdown() {
  shutting_down_ = true;
  io_.cancel();
}

void connection::finish() {
  finished_ = true;
  timer_.cancel();
  io_.close();
  session_.note("session ended", sys_clock::now());
  capture::session_record rec;
  rec.facts = session_.facts();
  rec.entries = transcript_.entries();
  rec.dropped = transcript_.dropped();
  srv_.store_.record_session(std::move(rec));
}

void connection::arm(std::chrono::milliseconds timeout) {
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
    deadline_ = steady::now() + std::chrono::seconds(1);   // time to send the 421
  }
  watch();
}

}  // namespace smtpfault::net
