// Fault rules set at runtime through the HTTP API ("the next RCPT to x@y gets 451, twice").
// A rule matches a phase or command, optionally an address pattern and a client network; the
// first matching rule wins and is evaluated before the scenario's hooks. Thread-safe: sessions on
// every I/O thread take rules while the API adds and removes them.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "fault/action.hpp"
#include "proto/command.hpp"
#include "proto/expected.hpp"
#include "session/envelope.hpp"
#include "session/server_session.hpp"

namespace smtpfault::net {

// An address with a prefix length: "10.0.0.0/8", "::1/128", or a bare address (all bits).
struct ip_network {
  boost::asio::ip::address base;
  unsigned prefix = 0;

  static proto::expected<ip_network, std::string> parse(std::string_view text);
  bool contains(const boost::asio::ip::address& a) const;
  std::string to_string() const;
};

struct rule_match {
  // "connect", "message" (end of data), "*" (any command), or a command verb in upper case:
  // "MAIL", "RCPT", "DATA", ... ; an unknown verb such as "XCLIENT" matches that command.
  std::string on = "*";
  // Glob (* and ?, case-insensitive) on the MAIL FROM or RCPT TO address; at "message" it
  // matches when any recipient does. Empty matches everything; a command without an address
  // never matches a non-empty pattern.
  std::string address;
  std::optional<ip_network> client;
};

struct fault_rule {
  std::string id;  // assigned by add()
  rule_match match;
  fault::action action;
  std::uint64_t times = 0;  // 0 = until deleted
  std::uint64_t fired = 0;
  std::string source;  // the action as the API received it, echoed when rules are listed
};

// What one consultation looks like to the rules.
struct rule_context {
  // connect, command, message, or starttls: before an implicit-TLS handshake
  session::hook phase = session::hook::command;
  const proto::command* command = nullptr;      // at the command phase
  const session::envelope* envelope = nullptr;  // at the message phase
  std::string_view client_address;              // "127.0.0.1:51234", "[::1]:51234"
};

class fault_rules {
 public:
  // Returns the id given to the rule ("r1", "r2", ...).
  std::string add(fault_rule r);
  bool remove(std::string_view id);
  void clear();
  std::vector<fault_rule> list() const;
  // Cheap: sessions ask at start whether they need the rule hooks at all.
  bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }

  // The first matching rule's action; its count goes up and an exhausted rule is removed.
  std::optional<fault::action> take(const rule_context& c);

 private:
  mutable std::mutex mu_;
  std::vector<fault_rule> rules_;
  std::uint64_t next_id_ = 0;
  std::atomic<std::size_t> count_{0};
};

}  // namespace smtpfault::net
