// A whole server session fed from fuzz input: every command, AUTH exchanges, DATA and BDAT,
// STARTTLS refused (no certificate), LMTP or SMTP and small limits picked by the first octet.
// The actions are carried out the way engine/net/connection.cpp does.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "session/server_session.hpp"

namespace s = smtpfault::session;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  s::server_options opts;
  opts.lmtp = data[0] & 1;
  opts.starttls_available = false;
  if (data[0] & 2) {
    opts.limits.command_line = 64;
    opts.limits.text_line = 80;
    opts.limits.auth_line = 128;
    opts.limits.max_recipients = 3;
    opts.limits.max_message_size = 256;
  }
  s::auth_policy users;
  users.users["alice"] = "secret";
  if (data[0] & 4) opts.auth = &users;
  const std::size_t chunk = 1 + data[1] % 31;
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  s::transcript log("fuzz", 256);
  s::server_session session(opts, {"fuzz", "127.0.0.1:1", "", false, "", "", "", "", false}, log);
  auto now = std::chrono::system_clock::time_point{};
  session.start(now);
  std::string pending, out;
  std::size_t stored = 0;
  auto drain = [&] {
    while (auto a = session.next_action()) {
      if (auto* r = std::get_if<s::send_reply>(&*a)) {
        smtpfault::proto::append_wire(out, r->reply);
      } else if (std::holds_alternative<s::deliver_message>(*a)) {
        session.pending_message() = {};
        session.on_stored((stored++ % 5 == 4) ? std::nullopt : std::optional<std::string>("id"),
                          now);
      } else if (std::holds_alternative<s::start_tls>(*a)) {
        std::abort();  // no certificate: STARTTLS must be refused
      }
    }
    out.clear();
  };
  drain();
  for (std::size_t at = 0; at < stream.size() && !session.closed(); at += chunk) {
    pending.append(stream.substr(at, chunk));
    while (!pending.empty() && !session.closed()) {
      std::size_t used = session.receive(pending, now);
      pending.erase(0, used);
      drain();
      if (used == 0) break;
    }
    if (pending.size() > 16 * 1024) std::abort();  // buffered input stays bounded
  }
  if (!session.closed()) session.on_idle_timeout(now);
  drain();
  return 0;
}
