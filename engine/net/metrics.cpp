#include "net/metrics.hpp"

namespace smtpfault::net {

std::string_view fault_kind_name(fault_kind k) {
  static constexpr std::string_view names[] = {
      "reply",      "raw",      "malformed",         "delay",          "trickle",
      "split",      "close",    "close_after_reply", "reset",          "hang",
      "extensions", "starttls", "certificate",       "auth_challenge", "unsolicited"};
  static_assert(std::size(names) == fault_kind_count);
  return names[static_cast<std::size_t>(k)];
}

void server_metrics::count_fault(const fault::action& a) {
  auto bump = [&](fault_kind k) { faults[static_cast<std::size_t>(k)].add(); };
  if (a.reply) bump(fault_kind::reply);
  if (a.raw) bump(fault_kind::raw);
  if (a.malformed != fault::malformed_kind::none) bump(fault_kind::malformed);
  if (a.delay.count() > 0) bump(fault_kind::delay);
  if (a.trickle_bytes > 0) bump(fault_kind::trickle);
  if (!a.split_at.empty()) bump(fault_kind::split);
  switch (a.end) {
    case fault::ending::close_without_reply:
      bump(fault_kind::close);
      break;
    case fault::ending::close_after_reply:
      bump(fault_kind::close_after_reply);
      break;
    case fault::ending::reset:
      bump(fault_kind::reset);
      break;
    case fault::ending::hang:
      bump(fault_kind::hang);
      break;
    case fault::ending::none:
      break;
  }
  if (a.extensions || !a.hide.empty()) bump(fault_kind::extensions);
  if (a.tls_mode != fault::starttls_mode::normal) bump(fault_kind::starttls);
  if (a.certificate != fault::certificate_kind::normal) bump(fault_kind::certificate);
  if (a.auth_challenge) bump(fault_kind::auth_challenge);
  if (a.unsolicited) bump(fault_kind::unsolicited);
}

}  // namespace smtpfault::net
