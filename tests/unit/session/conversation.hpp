// Test driver for server_session: plays the client side of a conversation without sockets and
// carries out the session's actions the way net/connection.cpp does (replies appended to an
// output string, messages moved out of pending_message() before on_stored, a fake TLS handshake
// that always succeeds, the "socket" gone after close_connection).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "proto/reply.hpp"
#include "session/server_session.hpp"
#include "session/transcript.hpp"

namespace smtpfault::session::testing {

using namespace std::string_literals;
inline const server_session::clock::time_point t0{std::chrono::seconds{1'700'000'000}};

// Replies as the session words them, so tests read like the RFC examples. Enhanced codes appear
// only after EHLO (RFC 2034), so a few constants exist in both forms.
namespace wire {
inline const std::string greeting = "220 smtpfault.test ESMTP smtpfault ready\r\n";
inline const std::string lmtp_greeting = "220 smtpfault.test LMTP smtpfault ready\r\n";
inline const std::string ehlo_all =
    "250-smtpfault.test greets client.test\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10485760\r\n"
    "250-8BITMIME\r\n"
    "250-SMTPUTF8\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-CHUNKING\r\n"
    "250-DSN\r\n"
    "250-STARTTLS\r\n"
    "250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\r\n";
inline const std::string helo_ok = "250 smtpfault.test\r\n";
inline const std::string ok = "250 2.0.0 Ok\r\n";
inline const std::string ok_plain = "250 Ok\r\n";
inline const std::string go_ahead = "354 End data with <CR><LF>.<CR><LF>\r\n";
inline const std::string bye = "221 2.0.0 smtpfault.test closing connection\r\n";
inline const std::string need_helo = "503 Send EHLO/HELO first\r\n";
inline const std::string nested_mail = "503 5.5.1 Nested MAIL command\r\n";
inline const std::string need_mail = "503 5.5.1 Need MAIL command\r\n";
inline const std::string need_mail_before_rcpt = "503 5.5.1 Need MAIL before RCPT\r\n";
inline const std::string need_rcpt = "503 5.5.1 Need RCPT command\r\n";
inline const std::string unrecognized = "500 5.5.1 Command unrecognized\r\n";
inline const std::string line_too_long = "500 5.5.2 Line too long\r\n";
inline const std::string auth_line_too_long =
    "500 5.5.6 Authentication exchange line is too long\r\n";
inline const std::string size_exceeded =
    "552 5.3.4 Message size exceeds fixed maximum message size\r\n";
inline const std::string too_many_rcpts = "452 4.5.3 Too many recipients\r\n";
inline const std::string tls_go = "220 2.0.0 Ready to start TLS\r\n";
inline const std::string auth_ok = "235 2.7.0 Authentication successful\r\n";
inline const std::string auth_bad = "535 5.7.8 Authentication credentials invalid\r\n";
inline const std::string auth_cancelled = "501 5.7.0 Authentication cancelled\r\n";
inline const std::string auth_bad_base64 = "501 5.5.2 Cannot decode the base64 response\r\n";
inline const std::string too_many_errors =
    "421 4.7.0 smtpfault.test Too many errors, closing connection\r\n";

inline std::string sender_ok(std::string_view address) {
  return "250 2.1.0 Sender <"s + std::string(address) + "> OK\r\n";
}
inline std::string recipient_ok(std::string_view address) {
  return "250 2.1.5 Recipient <"s + std::string(address) + "> OK\r\n";
}
inline std::string queued(std::string_view id) {
  return "250 2.0.0 Ok: queued as "s + std::string(id) + "\r\n";
}
inline std::string octets_received(std::size_t total) {
  return "250 2.0.0 " + std::to_string(total) + " octets received\r\n";
}
}  // namespace wire

// "250 2.1.0" for each complete reply in wire text ("503" when it has no enhanced code), so
// tests can check a pipelined burst by its codes alone.
inline std::vector<std::string> codes(std::string_view text) {
  std::vector<std::string> out;
  proto::reply_reader reader;
  while (!text.empty()) {
    auto end = text.find("\r\n");
    if (end == std::string_view::npos) break;
    auto st = reader.feed_line(text.substr(0, end));
    text.remove_prefix(end + 2);
    if (st == proto::reply_reader::status::need_more) continue;
    auto r = reader.take();
    if (st == proto::reply_reader::status::malformed) {
      out.push_back("malformed");
      continue;
    }
    out.push_back(std::to_string(r.code) + (r.enhanced.empty() ? "" : " " + r.enhanced));
  }
  return out;
}

struct stored_message {
  std::string id;
  message msg;
};

class conversation {
 public:
  explicit conversation(server_options opts = {}, bool start = true,
                        std::size_t transcript_entries = 10000)
      : log_("s1", transcript_entries), session_(std::move(opts), facts(), log_) {
    if (!start) return;
    session_.start(now_);
    pump();
    take();
  }

  static session_facts facts() {
    session_facts f;
    f.session_id = "s1";
    f.client_address = "192.0.2.1:50000";
    return f;
  }

  // Feeds the bytes as one TCP segment; returns the octets the server wrote in response.
  std::string send(std::string_view bytes) {
    feed(bytes);
    return take();
  }
  // The same bytes as two segments cut at `cut`.
  std::string send_cut(std::string_view bytes, std::size_t cut) {
    feed(bytes.substr(0, cut));
    feed(bytes.substr(cut));
    return take();
  }
  // One octet per segment.
  std::string send_bytewise(std::string_view bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i)
      feed(bytes.substr(i, 1));
    return take();
  }

  // Everything written since the last call (the greeting is taken by the constructor).
  std::string take() { return std::exchange(pending_output_, {}); }
  const std::string& output() const { return output_; }

  // "EHLO client.test" and the whole extension list taken away.
  void ehlo() {
    std::string r = send("EHLO client.test\r\n");
    ASSERT_EQ(r.substr(0, 4), "250-") << r;
  }
  // EHLO, MAIL and one RCPT per recipient, each expected to succeed.
  void open_transaction(std::string_view from = "a@x.test",
                        std::vector<std::string> to = {"b@y.test"}) {
    ehlo();
    ASSERT_EQ(send("MAIL FROM:<" + std::string(from) + ">\r\n"), wire::sender_ok(from));
    for (const auto& r : to)
      ASSERT_EQ(send("RCPT TO:<" + r + ">\r\n"), wire::recipient_ok(r));
  }

  // The endings the real driver decides on.
  std::string idle_timeout() {
    return act([&] { session_.on_idle_timeout(now_); });
  }
  std::string shutdown() {
    return act([&] { session_.on_shutdown(now_); });
  }
  std::string reject_busy() {
    return act([&] { session_.reject_busy(now_); });
  }

  void advance(std::chrono::milliseconds d) { now_ += d; }
  server_session::clock::time_point now() const { return now_; }
  // The next delivery fails (on_stored without an id, as when the store is full).
  void fail_next_store() { fail_next_store_ = true; }

  const std::vector<stored_message>& messages() const { return messages_; }
  bool closed() const { return closed_; }
  int tls_handshakes() const { return tls_handshakes_; }
  // Octets the session never consumed (unread when the connection closed).
  const std::string& unread() const { return in_; }
  server_session& session() { return session_; }
  const transcript& log() const { return log_; }

  // True when some transcript entry of the given direction contains `needle`.
  bool logged(direction dir, std::string_view needle) const {
    for (const auto& e : log_.entries()) {
      if (e.dir == dir && e.text.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  template <class F>
  std::string act(F f) {
    f();
    pump();
    return take();
  }

  void feed(std::string_view bytes) {
    if (closed_) return;  // the socket is gone
    in_.append(bytes);
    pump();
  }

  // The loop of connection::run: perform all actions, then hand buffered input to the session
  // while it is not blocked, and repeat while that produced new actions.
  void pump() {
    for (;;) {
      perform_actions();
      if (closed_ || in_.empty() || session_.blocked()) return;
      std::size_t used = session_.receive(in_, now_);
      EXPECT_LE(used, in_.size());
      in_.erase(0, used);
      if (!session_.has_actions()) return;
    }
  }

  void perform_actions() {
    while (!closed_) {
      auto a = session_.next_action();
      if (!a) return;
      if (auto* r = std::get_if<send_reply>(&*a)) {
        std::string w = proto::to_wire(r->reply);
        output_ += w;
        pending_output_ += w;
      } else if (std::holds_alternative<start_tls>(*a)) {
        ++tls_handshakes_;
        session_.on_tls_established("TLSv1.3", "TEST", now_);
      } else if (std::holds_alternative<deliver_message>(*a)) {
        std::optional<std::string> id;
        if (!std::exchange(fail_next_store_, false)) {
          id = "id-" + std::to_string(messages_.size() + 1);
          messages_.push_back({*id, std::move(session_.pending_message())});
        }
        session_.on_stored(id, now_);
      } else if (std::holds_alternative<close_connection>(*a)) {
        closed_ = true;
      }
    }
  }

  server_session::clock::time_point now_ = t0;
  transcript log_;
  server_session session_;
  std::string in_;
  std::string output_;
  std::string pending_output_;
  std::vector<stored_message> messages_;
  bool closed_ = false;
  bool fail_next_store_ = false;
  int tls_handshakes_ = 0;
};

// Options with some extensions hidden.
inline server_options without(std::initializer_list<extension> hidden) {
  server_options o;
  for (auto e : hidden)
    o.extensions.remove(e);
  return o;
}

}  // namespace smtpfault::session::testing
