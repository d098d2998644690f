// Counters the server keeps for GET /metrics. Plain atomics, bumped with relaxed ordering on the
// I/O threads and read (without a consistent snapshot, as Prometheus expects) by the HTTP API.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "fault/action.hpp"

namespace smtpfault::net {

// The parts a fault action can have; one action may count under several kinds.
enum class fault_kind : std::uint8_t {
  reply,
  raw,
  malformed,
  delay,
  trickle,
  split,
  close,
  close_after_reply,
  reset,
  hang,
  extensions,
  starttls,
  certificate,
  auth_challenge,
  unsolicited,
  count_
};

constexpr std::size_t fault_kind_count = static_cast<std::size_t>(fault_kind::count_);
std::string_view fault_kind_name(fault_kind k);

struct counter {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n = 1) { value.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

// Where a transport adds the octets it moves and the handshakes it makes.
struct io_counters {
  counter bytes_received;
  counter bytes_sent;
  counter tls_handshakes;
  counter tls_handshake_failures;
};

struct server_metrics : io_counters {
  counter sessions;          // accepted and served
  counter sessions_refused;  // over the connection cap (421 4.7.0)
  counter lua_errors;        // hooks that failed (451 4.3.0)
  counter rules_fired;       // API fault rules that matched
  std::array<counter, fault_kind_count> faults;

  // Counts every kind the action has; a default action counts nothing.
  void count_fault(const fault::action& a);
};

}  // namespace smtpfault::net
