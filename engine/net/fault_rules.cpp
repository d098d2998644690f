#include "net/fault_rules.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "proto/glob.hpp"

namespace smtpfault::net {

namespace {

namespace ip = boost::asio::ip;

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// "127.0.0.1:51234" / "[::1]:51234" -> the address; v4-mapped v6 becomes v4.
std::optional<ip::address> client_ip(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon != std::string_view::npos) text = text.substr(0, colon);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

bool on_matches(const rule_match& m, const rule_context& c) {
  if (c.phase == session::hook::connect) return m.on == "connect";
  if (c.phase == session::hook::message) return m.on == "message";
  // Before the handshake of an implicit-TLS port: only a rule made for STARTTLS, not "*".
  if (c.phase == session::hook::starttls) return m.on == "STARTTLS";
  if (c.phase != session::hook::command || !c.command) return false;
  if (m.on == "*") return true;
  if (m.on == "connect" || m.on == "message") return false;
  return upper(c.command->verb_text) == m.on;
}

bool address_matches(const rule_match& m, const rule_context& c) {
  if (m.address.empty()) return true;
  if (c.phase == session::hook::message && c.envelope) {
    return std::any_of(
        c.envelope->recipients.begin(), c.envelope->recipients.end(),
        [&](const auto& r) { return proto::glob_match(m.address, r.address.address()); });
  }
  if (!c.command) return false;
  auto v = c.command->kind;
  // "<>" is the null reverse-path (bounces, DSNs), which no pattern could match.
  if (m.address == "<>") return v == proto::verb::mail && c.command->path.address().empty();
  if (v != proto::verb::mail && v != proto::verb::rcpt) return false;
  return proto::glob_match(m.address, c.command->path.address());
}

bool client_matches(const rule_match& m, const rule_context& c) {
  if (!m.client) return true;
  auto a = client_ip(c.client_address);
  return a && m.client->contains(*a);
}

}  // namespace

proto::expected<ip_network, std::string> ip_network::parse(std::string_view text) {
  std::string_view addr = text;
  std::optional<unsigned> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    auto bits = text.substr(slash + 1);
    unsigned n = 0;
    auto [ptr, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n);
    if (bits.empty() || ec != std::errc{} || ptr != bits.data() + bits.size()) {
      return proto::unexpected{"'" + std::string(text) + "' has a bad prefix length"};
    }
    prefix = n;
  }
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(addr), ec);
  if (ec) return proto::unexpected{"'" + std::string(text) + "' is not an IP address or CIDR"};
  unsigned max = a.is_v4() ? 32 : 128;
  if (prefix && *prefix > max) {
    return proto::unexpected{"'" + std::string(text) + "': prefix longer than the address"};
  }
  // Clients are compared as IPv4 when they come v4-mapped ("::ffff:10.0.0.1"), so a network
  // written that way is the IPv4 one; a shorter prefix than the mapping's could never match.
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    if (prefix && *prefix < 96) {
      return proto::unexpected{"'" + std::string(text) +
                               "': an IPv4-mapped network needs a prefix of 96 or more"};
    }
    return ip_network{ip::make_address_v4(ip::v4_mapped, a.to_v6()), prefix.value_or(128) - 96};
  }
  return ip_network{a, prefix.value_or(max)};
}

bool ip_network::contains(const ip::address& a) const {
  if (a.is_v4() != base.is_v4()) return false;
  auto compare = [&](const auto& x, const auto& y) {
    unsigned bits = prefix;
    for (std::size_t i = 0; i < x.size() && bits > 0; ++i) {
      unsigned take = std::min(bits, 8u);
      auto mask = static_cast<unsigned char>(0xff << (8 - take));
      if ((x[i] & mask) != (y[i] & mask)) return false;
      bits -= take;
    }
    return true;
  };
  if (a.is_v4()) return compare(base.to_v4().to_bytes(), a.to_v4().to_bytes());
  return compare(base.to_v6().to_bytes(), a.to_v6().to_bytes());
}

std::string ip_network::to_string() const {
  return base.to_string() + "/" + std::to_string(prefix);
}

std::string fault_rules::add(fault_rule r) {
  std::lock_guard lock(mu_);
  r.id = "r" + std::to_string(++next_id_);
  r.fired = 0;
  rules_.push_back(std::move(r));
  count_.store(rules_.size(), std::memory_order_relaxed);
  return rules_.back().id;
}

bool fault_rules::remove(std::string_view id) {
  std::lock_guard lock(mu_);
  auto n = std::erase_if(rules_, [&](const fault_rule& r) { return r.id == id; });
  count_.store(rules_.size(), std::memory_order_relaxed);
  return n > 0;
}

void fault_rules::clear() {
  std::lock_guard lock(mu_);
  rules_.clear();
  count_.store(0, std::memory_order_relaxed);
}

std::vector<fault_rule> fault_rules::list() const {
  std::lock_guard lock(mu_);
  return rules_;
}

std::optional<fault::action> fault_rules::take(const rule_context& c) {
  if (empty()) return std::nullopt;
  std::lock_guard lock(mu_);
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    const auto& m = it->match;
    if (!on_matches(m, c) || !address_matches(m, c) || !client_matches(m, c)) continue;
    // Before an implicit-TLS handshake only a certificate or an abort can act; a STARTTLS rule
    // with a reply (454) is left for a STARTTLS command on the plain port.
    const auto& act = it->action;
    if (c.phase == session::hook::starttls && act.certificate == fault::certificate_kind::normal &&
        act.tls_mode != fault::starttls_mode::abort_handshake) {
      continue;
    }
    ++it->fired;
    fault::action a = it->action;
    a.name = "rule " + it->id + ": " + a.name;
    if (it->times != 0 && it->fired >= it->times) {
      rules_.erase(it);
      count_.store(rules_.size(), std::memory_order_relaxed);
    }
    return a;
  }
  return std::nullopt;
}

}  // namespace smtpfault::net
