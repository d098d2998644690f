// A fault as plain data: what a scenario hook (or an API rule) asks the server to do instead of,
// or on top of, its default behaviour. Hooks build these; the session applies the protocol side
// (which reply, which state change) and one executor in engine/net performs the wire side.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/reply.hpp"

namespace smtpfault::fault {

using millis = std::chrono::milliseconds;

// What happens to the connection once the reply (if any) is out.
enum class ending {
  none,
  close_without_reply,  // drop silently; at end of data this is "accept then lose"
  close_after_reply,
  reset,  // SO_LINGER 0: the client sees ECONNRESET
  hang,   // never answer again; input is read and ignored
};

// Deliberately broken reply formats.
enum class malformed_kind {
  none,
  mixed_codes,    // multi-line reply whose lines carry different codes
  missing_space,  // "250OK": no separator after the code
  long_line,      // one reply line far over the 512-octet limit
  garbage,        // not a reply at all
};

enum class starttls_mode {
  normal,
  close_after_220,   // "220 Ready" then close before any handshake
  abort_handshake,   // "220 Ready", read the ClientHello, then reset
  inject_plaintext,  // "220 Ready" plus plaintext in the same segment (CVE-2011-0411 style)
};

enum class certificate_kind { normal, self_signed, expired, wrong_host, unknown_ca };

// The bad certificates by the names a scenario and a fault rule give them
// (`certificate = "expired"`).
inline constexpr std::pair<const char*, certificate_kind> certificate_kinds[] = {
    {"self_signed", certificate_kind::self_signed},
    {"expired", certificate_kind::expired},
    {"wrong_host", certificate_kind::wrong_host},
    {"unknown_ca", certificate_kind::unknown_ca}};

// "" for the server's own.
constexpr std::string_view certificate_kind_name(certificate_kind k) {
  for (const auto& [name, kind] : certificate_kinds)
    if (kind == k) return name;
  return "";
}

constexpr std::optional<certificate_kind> certificate_kind_named(std::string_view name) {
  for (const auto& [n, kind] : certificate_kinds)
    if (n == name) return kind;
  return std::nullopt;
}

struct unsolicited_reply {
  proto::reply reply;
  millis after{0};  // once the session has been idle this long
  bool close = true;
};

struct action {
  std::string name;                   // for transcripts: "reply 451", "trickle", ...
  std::optional<proto::reply> reply;  // replaces the default reply
  std::optional<std::string> raw;     // octets sent instead of the formatted reply
  malformed_kind malformed = malformed_kind::none;
  millis delay{0};                    // before the reply
  std::size_t trickle_bytes = 0;      // > 0: write this many octets ...
  millis trickle_every{0};            // ... then wait this long, until done
  std::vector<std::size_t> split_at;  // write boundaries inside the reply octets
  ending end = ending::none;
  // smtp.lose(): the ending is close_without_reply, meant for the end of a message (accept then
  // lose); from another hook it only closes, and the transcript says so.
  bool loses_message = false;

  // EHLO/LHLO hook: the advertised keywords (replace the list, or hide some).
  std::optional<std::vector<std::string>> extensions;
  std::vector<std::string> hide;
  // STARTTLS hook.
  starttls_mode tls_mode = starttls_mode::normal;
  certificate_kind certificate = certificate_kind::normal;
  std::string inject;  // plaintext for inject_plaintext
  // AUTH: the text of the next 334 challenge (already base64 or deliberately not).
  std::optional<std::string> auth_challenge;
  // Any hook: an unsolicited reply once the session goes idle.
  std::optional<unsolicited_reply> unsolicited;
  // LMTP, at the end of data: one reply per recipient in RCPT order (RFC 2033 4.2); an empty
  // entry (or none) keeps that recipient's normal reply.
  std::vector<std::optional<proto::reply>> each_recipient;

  // True when the action changes nothing: the default behaviour applies.
  bool is_default() const {
    return !reply && !raw && malformed == malformed_kind::none && delay.count() == 0 &&
           trickle_bytes == 0 && split_at.empty() && end == ending::none && !extensions &&
           hide.empty() && tls_mode == starttls_mode::normal &&
           certificate == certificate_kind::normal && !auth_challenge && !unsolicited &&
           each_recipient.empty();
  }
  bool rejects() const { return reply && reply->code >= 400; }
  // True when the action says nothing about what the reply is or whether the connection ends:
  // only how the reply goes out (delay, trickle, split) or faults that wait for later.
  bool leaves_the_reply() const {
    return !reply && !raw && malformed == malformed_kind::none && end == ending::none &&
           each_recipient.empty();
  }
  bool shapes_the_reply() const { return delay.count() || trickle_bytes || !split_at.empty(); }
  // The reply goes out as `o`'s would: its delay, trickle and split.
  void shape_like(const action& o) {
    delay = o.delay;
    trickle_bytes = o.trickle_bytes;
    trickle_every = o.trickle_every;
    split_at = o.split_at;
  }
};

}  // namespace smtpfault::fault
