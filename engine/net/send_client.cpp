#include "net/send_client.hpp"

#include <algorithm>
#include <charconv>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/exception_text.hpp"
#include "net/tls_context.hpp"
#include "net/transport.hpp"
#include "proto/ascii.hpp"
#include "proto/data_encoding.hpp"
#include "proto/line_reader.hpp"
#include "proto/message_needs.hpp"
#include "proto/reply.hpp"
#include "proto/reply_stream.hpp"
#include "proto/sasl.hpp"
#include "proto/tls_record.hpp"
#include "session/transcript.hpp"

namespace smtpfault::net {

namespace {

class client {
 public:
  client(asio::io_context& ctx, const send_options& o,
         const std::function<void(std::string_view)>& on_line)
      : ctx_(ctx), o_(o), on_line_(on_line), io_(tcp::socket(ctx)), lines_(64 * 1024) {}

  asio::awaitable<send_result> run();

 private:
  asio::awaitable<std::string> connect();
  asio::awaitable<std::optional<proto::reply>> read_reply(std::string& error);
  asio::awaitable<std::string> command(const std::string& line, int expect_class,
                                       std::optional<proto::reply>* out = nullptr);
  asio::awaitable<bool> send_raw(const std::string& bytes, std::string& error);
  asio::awaitable<std::string> handshake(asio::ssl::context& tls);
  asio::awaitable<send_result> give_up(std::string error);
  asio::awaitable<std::string> cancel_auth(std::string why);
  std::string unsendable(const proto::message_needs& needs, const std::string& utf8_address,
                         std::size_t size) const;
  std::string mail_parameters(const proto::message_needs& needs, bool utf8_address,
                              std::size_t size) const;
  bool offers(std::string_view keyword) const {
    return ehlo_ && proto::ehlo_offers(*ehlo_, keyword);
  }
  // AUTH, or the "AUTH=" line servers from before RFC 4954 wrote (AUTH=LOGIN PLAIN), which
  // clients still read.
  bool offers_auth() const {
    if (offers("AUTH")) return true;
    if (!ehlo_) return false;
    return std::any_of(ehlo_->lines.begin() + 1, ehlo_->lines.end(),
                       [](const std::string& l) { return proto::istarts_with(l, "AUTH="); });
  }
  // OpenSSL's reason for a failed verification ("hostname mismatch"), else the error's text.
  std::string handshake_error(const error_code& ec) const {
    std::string why = io_.tls_verify_error();
    if (why.empty()) return ec.message();
    if (o_.ca_file.empty() && io_.tls_issuer_untrusted()) {
      why +=
          " (the system's CAs do not vouch for it: give --ca FILE, e.g. "
          "fixtures/certs/test-ca.pem for smtpfault's own certificate)";
    }
    return why;
  }
  asio::awaitable<std::string> recipients(std::size_t& accepted);
  asio::awaitable<send_result> transaction();
  // A failure after some recipients were refused says which, and why, as well.
  std::string after_refusals(std::string why) const {
    if (!refused_rcpts_.empty()) why += "; refused before: " + refusals();
    return why;
  }
  asio::awaitable<std::optional<send_result>> upgrade(asio::ssl::context& tls);
  asio::awaitable<std::string> hello();

  asio::io_context& ctx_;
  const send_options& o_;
  const std::function<void(std::string_view)>& on_line_;
  transport io_;
  proto::line_reader lines_;
  std::string in_;
  std::string first_octets_;  // the first the server sent, to tell a TLS record from text
  bool refused_ = false;      // the last command got a reply, of the wrong class
  // The recipients refused so far, each with the server's refusal: every outcome lists them,
  // also one that failed later on.
  struct refusal {
    std::string rcpt;
    std::string why;
  };
  std::vector<refusal> refused_rcpts_;
  // "b@x: server replied 550 ...; c@x: ...": the refusals as the outcome quotes them.
  std::string refusals() const {
    std::string text;
    for (const auto& r : refused_rcpts_)
      text += (text.empty() ? "" : "; ") + r.rcpt + ": " + r.why;
    return text;
  }
  std::vector<std::string> refused_list() const {
    std::vector<std::string> list;
    for (const auto& r : refused_rcpts_)
      list.push_back(r.rcpt);
    return list;
  }
  // The latest accepted EHLO's reply: what the server offers; none after HELO, when no
  // extension may be used. Replaced after STARTTLS, since what came before TLS may not be
  // trusted (RFC 3207 4.2).
  std::optional<proto::reply> ehlo_;
};

// EHLO, or HELO when the server does not know EHLO (RFC 5321 3.2: a 5xx to EHLO means an old
// server, and the client falls back to HELO).
asio::awaitable<std::string> client::hello() {
  std::optional<proto::reply> rep;
  auto err = co_await command("EHLO " + o_.helo, 2, &rep);
  if (err.empty()) ehlo_ = rep;
  if (err.empty() || !refused_ || !rep || rep->code / 100 != 5) co_return err;
  co_return co_await command("HELO " + o_.helo, 2);
}

asio::awaitable<std::string> client::connect() {
  const auto deadline = std::chrono::steady_clock::now() + o_.timeout;
  const auto r = co_await connect_before(io_.socket(), o_.host, o_.port, deadline);
  using step = connect_result::step;
  if (r.failed == step::resolve) {
    co_return r.timed_out ? "timeout resolving " + o_.host
                          : "cannot resolve " + o_.host + ": " + r.ec.message();
  }
  if (r.timed_out) co_return "timeout connecting to " + o_.host;
  if (r.ec) {
    co_return "cannot connect to " + host_port_text(o_.host, o_.port) + ": " + r.ec.message();
  }
  co_return "";
}

asio::awaitable<std::optional<proto::reply>> client::read_reply(std::string& error) {
  proto::reply_reader reader;
  // The timeout is for the whole reply: a server that keeps sending (an endless line, endless
  // continuation lines) must not hold the client for ever.
  const auto deadline = std::chrono::steady_clock::now() + o_.timeout;
  // Not silence when the wait ended inside a line with no end in sight.
  auto timed_out = [&] {
    return lines_.discarding() ? "malformed reply: " + proto::endless_line(lines_.max_line())
                               : std::string("timeout waiting for a reply");
  };
  for (;;) {
    auto r = lines_.next(in_);
    if (r.st == proto::line_reader::status::too_long) {
      error = "malformed reply: reply line longer than " + std::to_string(lines_.max_line()) +
              " octets";
      co_return std::nullopt;
    }
    if (r.st == proto::line_reader::status::line) {
      std::string line(r.line);
      in_.erase(0, r.consumed);
      on_line_("S: " + session::escape_wire(line));
      auto st = reader.feed_line(line);
      if (st == proto::reply_reader::status::complete) co_return reader.take();
      if (st == proto::reply_reader::status::malformed) {
        error = "malformed reply: " + reader.error() + ": '" + session::escape_wire(line) + "'";
        co_return std::nullopt;
      }
      continue;
    }
    in_.erase(0, r.consumed);
    char buf[4096];
    // Past the bound already: no end is worth waiting for (the line is malformed either way).
    if (lines_.discarding() || std::chrono::steady_clock::now() >= deadline) {
      error = timed_out();
      co_return std::nullopt;
    }
    auto res = co_await io_.read_some_before(asio::buffer(buf), deadline);
    if (!res) {
      error = timed_out();
      co_return std::nullopt;
    }
    const auto& got = *res;
    if (got.ec) {
      error = closed_by_peer(got.ec) ? "the server closed the connection"
                                     : "connection lost: " + got.ec.message();
      co_return std::nullopt;
    }
    in_.append(buf, got.bytes);
    const auto sniff = std::min(got.bytes, proto::tls_record_sniff - first_octets_.size());
    first_octets_.append(buf, sniff);
  }
}

// Bounded like every other wait: --timeout for each bit of progress, not for the whole
// message, so a slow link that still reads is not cut off, and a server that stopped is.
asio::awaitable<bool> client::send_raw(const std::string& bytes, std::string& error) {
  for (std::size_t done = 0; done < bytes.size();) {
    const auto deadline = std::chrono::steady_clock::now() + o_.timeout;
    auto r = co_await io_.write_some_before(asio::buffer(bytes.data() + done, bytes.size() - done),
                                            deadline);
    if (!r) {
      error = "timeout writing to the server: it stopped reading";
      co_return false;
    }
    const auto& w = *r;
    done += w.bytes;
    if (w.ec) {
      error = "write failed: " + w.ec.message();
      co_return false;
    }
  }
  co_return true;
}

// The TLS handshake, bounded: a server that answers STARTTLS with 220 and then says nothing
// (or a plaintext server on the implicit-TLS port, waiting for a command).
asio::awaitable<std::string> client::handshake(asio::ssl::context& tls) {
  const auto deadline = std::chrono::steady_clock::now() + o_.timeout;
  auto r = co_await io_.client_handshake_before(tls, o_.host, o_.verify_certificate, deadline);
  if (!r) co_return "TLS handshake failed: no answer within the timeout";
  if (auto ec = *r) {
    std::string why = "TLS handshake failed: " + handshake_error(ec);
    // What a plain SMTP port's greeting looks like to TLS: "220 " is no TLS record.
    if (o_.tls == send_options::tls_mode::implicit &&
        ec.message().find("wrong version number") != std::string::npos) {
      why += " (the server answered without TLS: a plain SMTP port takes --starttls or no TLS)";
    }
    co_return why;
  }
  co_return "";
}

// Sends a line and reads its reply; returns an error unless the reply is of expect_class.
asio::awaitable<std::string> client::command(const std::string& line, int expect_class,
                                             std::optional<proto::reply>* out) {
  std::string error;
  refused_ = false;
  // What went wrong names the command it answered: "DATA: server replied 250 ..." (a RCPT's
  // refusal is named by its recipient, the greeting's and the message's by their callers).
  const std::string verb = line.substr(0, line.find(' '));
  const std::string about = line.empty() || verb == "RCPT" ? "" : verb + ": ";
  if (!line.empty()) {
    bool secret = line.rfind("AUTH ", 0) == 0;
    on_line_("C: " + (secret ? std::string("AUTH PLAIN ****") : session::escape_wire(line)));
    if (!co_await send_raw(line + "\r\n", error)) co_return about + error;
  }
  auto rep = co_await read_reply(error);
  if (!rep) co_return about + error;
  if (out) *out = rep;
  if (rep->code / 100 != expect_class) {
    // A 421 is the server closing the connection: nothing more to say to it, not even QUIT.
    refused_ = rep->code != 421;
    std::string text = std::to_string(rep->code);
    if (!rep->enhanced.empty()) text += " " + rep->enhanced;
    // Every line of a multi-line refusal (the reason is often not in the last one), escaped:
    // a garbage reply must not put raw octets on the terminal.
    std::string said;
    for (const auto& l : rep->lines) {
      if (!l.empty()) said += (said.empty() ? "" : " / ") + session::escape_wire(l);
    }
    if (!said.empty()) text += " " + said;
    co_return about + "server replied " + text;
  }
  co_return "";
}

// A refusal ends the session as a mailer should, with QUIT; after a lost connection or a timeout
// there is nobody to say it to.
asio::awaitable<send_result> client::give_up(std::string error) {
  if (refused_) co_await command("QUIT", 2);
  io_.close();
  co_return send_result{false, std::move(error), 0, refused_list()};
}

asio::awaitable<send_result> client::run() {
  auto tls = make_client_context(o_.verify_certificate);
  if (!o_.ca_file.empty()) {
    if (auto why = trust_ca_file(tls, o_.ca_file); !why.empty()) co_return send_result{false, why};
  }
  std::string err = co_await connect();
  if (!err.empty()) co_return send_result{false, err};
  if (o_.tls == send_options::tls_mode::implicit) {
    if (!(err = co_await handshake(tls)).empty()) co_return send_result{false, err};
    on_line_("*: TLS established " + io_.tls_version() + " (implicit TLS)");
  }
  std::optional<proto::reply> greeting;
  if (!(err = co_await command("", 2, &greeting)).empty()) {
    // A port for implicit TLS says nothing until the handshake: the likeliest wrong port when
    // nothing came, or a TLS record; not when text did (a 421 greeting, a half-sent 220-, an
    // HTTP reply: the server plainly talks in the clear).
    if (o_.tls != send_options::tls_mode::implicit && !greeting &&
        proto::could_be_tls(first_octets_)) {
      // Silence is also what a port of another service that waits for a request gives (an
      // HTTP API's): said too, so that the TLS advice is not taken as the only reading.
      const std::string tls_advice =
          "if this port takes implicit TLS, as 465 does, it waits for a TLS handshake first: "
          "add --tls)";
      err += first_octets_.empty() ? " (nothing came: a port that serves no SMTP, an HTTP "
                                     "API's for one, is silent too; " +
                                         tls_advice
                                   : " (" + tls_advice;
    }
    co_return co_await give_up("greeting: " + err);
  }
  if (!(err = co_await hello()).empty()) co_return co_await give_up(err);
  if (o_.tls == send_options::tls_mode::starttls) {
    auto failed = co_await upgrade(tls);
    if (failed) co_return *failed;
  }
  if (!o_.user.empty()) {
    if (!ehlo_) {
      refused_ = true;
      co_return co_await give_up("AUTH needs EHLO, which the server refused");
    }
    // The credentials go only where AUTH is offered: a server may offer it over TLS alone
    // (OpenSMTPD does), and one that does not would log them with the refusal.
    if (!offers_auth()) {
      refused_ = true;
      const bool before_tls = !io_.is_tls() && offers("STARTTLS");
      std::string why = "AUTH: the server did not offer it";
      if (before_tls) why += " before TLS: add --starttls";
      co_return co_await give_up(why + " (the credentials were not sent)");
    }
    std::string plain = std::string("\0", 1) + o_.user + std::string("\0", 1) + o_.password;
    std::optional<proto::reply> rep;
    if (!(err = co_await command("AUTH PLAIN " + proto::base64_encode(plain), 2, &rep)).empty()) {
      if (rep && rep->code == 334) err = co_await cancel_auth(std::move(err));
      co_return co_await give_up(err);
    }
  }
  co_return co_await transaction();
}

// A 334 asks for more than PLAIN's one response (a server that ignored it, or a challenge), and
// the server now reads the next line as that: the exchange is cancelled with "*" (RFC 4954 4)
// before the QUIT.
asio::awaitable<std::string> client::cancel_auth(std::string why) {
  const auto cancelled = co_await command("*", 5);
  if (cancelled.empty()) refused_ = true;  // the expected 501: the session goes on to its QUIT
  co_return why + " (it asked for more than AUTH PLAIN's credentials; cancelled with *)";
}

// STARTTLS, the handshake and EHLO again; what the run ends with when one of them fails.
asio::awaitable<std::optional<send_result>> client::upgrade(asio::ssl::context& tls) {
  std::string err;
  if (!ehlo_) {
    refused_ = true;  // the session is fine: end it with QUIT
    co_return co_await give_up("STARTTLS needs EHLO, which the server refused");
  }
  std::optional<proto::reply> go;
  if (!(err = co_await command("STARTTLS", 2, &go)).empty()) {
    // Sent anyway (a server may take it unannounced); a refusal then has its likely reason.
    if (!offers("STARTTLS")) err += " (the server's EHLO reply did not offer STARTTLS)";
    co_return co_await give_up(err);
  }
  if (go->code != 220) {  // RFC 3207 4: only 220 starts the handshake
    refused_ = true;
    co_return co_await give_up("STARTTLS: server replied " + std::to_string(go->code) +
                               ", not 220: no TLS handshake started");
  }
  // RFC 3207 5 (CVE-2011-0411): anything that came with the 220 was sent before TLS, by the
  // server or by someone in the middle; none of it may count as a reply inside TLS.
  if (!in_.empty()) {
    on_line_("*: discarded " + std::to_string(in_.size()) +
             " octet(s) that came after the 220, before the TLS handshake");
    in_.clear();
  }
  if (!(err = co_await handshake(tls)).empty()) co_return send_result{false, err};
  on_line_("*: TLS established " + io_.tls_version());
  ehlo_.reset();
  if (!(err = co_await command("EHLO " + o_.helo, 2, &ehlo_)).empty()) {
    ehlo_.reset();
    co_return co_await give_up(err);
  }
  co_return std::nullopt;
}

// The first address of the envelope that is not ASCII, or "".
std::string first_non_ascii_address(const send_options& o) {
  if (proto::has_8bit(o.from)) return o.from;
  const auto to = std::find_if(o.to.begin(), o.to.end(),
                               [](const std::string& a) { return proto::has_8bit(a); });
  return to == o.to.end() ? std::string() : *to;
}

// Why the server cannot take the message as it is, or "": delivery status notifications need
// DSN (RFC 3461), an address or a header field that is not ASCII needs SMTPUTF8 (RFC 6531,
// 6532), 8-bit octets need 8BITMIME (RFC 6152). send converts nothing and drops nothing asked
// for: such a message goes to none of its recipients.
std::string client::unsendable(const proto::message_needs& needs, const std::string& utf8_address,
                               std::size_t size) const {
  const std::string not_offered = ", and the server did not offer it";
  // RFC 1870 6.1: a message over the SIZE the server declared is not sent (0 declares none).
  if (const auto declared = ehlo_ ? proto::ehlo_parameters(*ehlo_, "SIZE") : std::nullopt) {
    std::uint64_t limit = 0;
    const auto [end, ec] =
        std::from_chars(declared->data(), declared->data() + declared->size(), limit);
    if (ec == std::errc{} && limit > 0 && size > limit) {
      return "the message is " + std::to_string(size) + " octets, over the SIZE " +
             std::to_string(limit) + " the server declared (RFC 1870 6.1)";
    }
  }
  // A server without DSN would refuse the parameters, or take the message and never report.
  if (!o_.dsn.empty() && !offers("DSN")) {
    return "delivery status notifications (" + proto::dsn_keywords(o_.dsn) +
           ") need DSN (RFC 3461)" + not_offered;
  }
  if (!utf8_address.empty() && !offers("SMTPUTF8")) {
    return "the address " + session::escape_wire(utf8_address) +
           " is not ASCII, which needs SMTPUTF8 (RFC 6531)" + not_offered;
  }
  if (needs.non_ascii_header && !offers("SMTPUTF8")) {
    return "the header field '" + proto::printable(*needs.non_ascii_header, 60) +
           "' is not ASCII, which needs SMTPUTF8 (RFC 6532)" + not_offered +
           " (RFC 2047 encoded words write it in ASCII)";
  }
  if (needs.eight_bit && !offers("8BITMIME")) {
    return "the message has 8-bit octets, which need 8BITMIME (RFC 6152)" + not_offered +
           " (base64 or quoted-printable write them in 7 bits)";
  }
  return "";
}

// MAIL FROM's parameters for what the message needs, which unsendable() found the server to
// offer: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), and the DSN ones asked
// for (RFC 3461: RET, ENVID).
std::string client::mail_parameters(const proto::message_needs& needs, bool utf8_address,
                                    std::size_t size) const {
  std::string params;
  if (offers("SIZE")) params += " SIZE=" + std::to_string(size);
  if (needs.eight_bit) params += " BODY=8BITMIME";
  if (utf8_address || needs.non_ascii_header) params += " SMTPUTF8";
  return params + proto::dsn_mail_parameters(o_.dsn);
}

// RCPT TO for every recipient, each with the NOTIFY asked for: a refused one is noted and the
// next one tried. An error when the connection is gone (a 421, a lost connection): no later
// recipient can be tried.
asio::awaitable<std::string> client::recipients(std::size_t& accepted) {
  for (const auto& rcpt : o_.to) {
    const std::string err =
        co_await command("RCPT TO:<" + rcpt + ">" + proto::dsn_rcpt_parameters(o_.dsn), 2);
    if (err.empty()) {
      ++accepted;
    } else if (refused_) {
      refused_rcpts_.push_back({rcpt, err});
    } else {
      co_return rcpt + ": " + err;
    }
  }
  co_return "";
}

// Every recipient is tried; the message goes to those accepted, and the refused ones are named.
asio::awaitable<send_result> client::transaction() {
  std::string err;
  const auto needs = proto::needs_of(o_.data);
  const auto utf8_address = first_non_ascii_address(o_);
  const auto message = proto::stuff_message(o_.data);
  if (!(err = unsendable(needs, utf8_address, message.size)).empty()) {
    refused_ = true;  // nothing was refused yet: the session ends with QUIT
    co_return co_await give_up(err);
  }
  const auto params = mail_parameters(needs, !utf8_address.empty(), message.size);
  if (!(err = co_await command("MAIL FROM:<" + o_.from + ">" + params, 2)).empty()) {
    co_return co_await give_up(err);
  }
  std::size_t accepted = 0;
  if (!(err = co_await recipients(accepted)).empty()) {
    co_return co_await give_up(after_refusals(std::move(err)));
  }
  if (accepted == 0) co_return co_await give_up("no recipient accepted: " + refusals());
  if (!(err = co_await command("DATA", 3)).empty()) {
    co_return co_await give_up(after_refusals(std::move(err)));
  }
  on_line_("C: <" + std::to_string(message.size) + " octets of message data>");
  if (!co_await send_raw(message.octets, err)) {
    co_return co_await give_up(after_refusals("message: " + err));
  }
  if (!(err = co_await command("", 2)).empty()) {
    co_return co_await give_up(after_refusals("message: " + err));
  }
  co_await command("QUIT", 2);
  io_.close();
  co_return send_result{refused_rcpts_.empty(), refusals(), accepted, refused_list()};
}

}  // namespace

send_result send_message(const send_options& opts,
                         const std::function<void(std::string_view)>& on_line) {
  asio::io_context ctx;
  send_result result;
  client c(ctx, opts, on_line);
  asio::co_spawn(
      ctx, [&]() -> asio::awaitable<void> { result = co_await c.run(); },
      [&](std::exception_ptr e) {
        if (auto what = exception_text(e)) result = {false, *what};
      });
  ctx.run();
  return result;
}

}  // namespace smtpfault::net
