#include "app/server_setup.hpp"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include <boost/asio/ip/address.hpp>

#include "app/command_flags.hpp"
#include "config/loader.hpp"
#include "proto/duration.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::vector<tcp::endpoint> resolve(const std::vector<config::endpoint>& eps,
                                   const std::string& setting, std::string& error) {
  std::vector<tcp::endpoint> out;
  for (const auto& ep : eps) {
    auto e = to_endpoint(ep, setting);
    if (!e) {
      error = e.error();
      return {};
    }
    out.push_back(*e);
  }
  return out;
}

}  // namespace

proto::expected<tcp::endpoint, std::string> to_endpoint(const config::endpoint& ep,
                                                        const std::string& setting) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(ep.host == "localhost" ? "127.0.0.1" : ep.host, ec);
  if (ec) return proto::unexpected{setting + ": '" + ep.to_string() + "' is not an IP address"};
  return tcp::endpoint(addr, ep.port);
}

tcp::endpoint reachable_here(tcp::endpoint ep) {
  if (ep.address().is_unspecified()) {
    ep.address(ep.address().is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                                    : asio::ip::address(asio::ip::address_v4::loopback()));
  }
  return ep;
}

net::server_config make_server_config(const config::settings& s, std::string& error) {
  net::server_config c;
  c.listen = resolve(s.listen, s.named("listen"), error);
  if (error.empty()) c.tls_listen = resolve(s.tls_listen, s.named("tls_listen"), error);
  c.session.hostname = s.hostname;
  c.session.limits = s.limits;
  c.session.lmtp = s.lmtp;
  for (const auto& u : s.auth_users)
    c.auth.users[u.name] = u.password;
  c.idle_timeout = proto::millis_from_seconds(s.idle_timeout, true);
  c.command_timeout = proto::millis_from_seconds(s.command_timeout, true);
  c.data_timeout = proto::millis_from_seconds(s.data_timeout, true);
  c.tls_handshake_timeout = proto::millis_from_seconds(s.tls_handshake_timeout, true);
  c.max_connections = s.max_connections;
  // One per two cores: a mock shares its machine with the clients that drive it (the mailer
  // under test, a load generator), and on two cores one I/O thread measured at or above two
  // with many sessions and small messages, with less CPU per message, and either way on the
  // other workloads (bench/RESULTS.md). Within the bound an explicit setting has (a listener
  // per thread and port).
  c.threads = s.threads ? s.threads : std::clamp(std::thread::hardware_concurrency() / 2, 1u, 256u);
  return c;
}

script::scenario_options scenario_options(const config::settings& s) {
  script::scenario_options o;
  // Without --seed, a random one; it is printed so the run can be replayed.
  o.seed = s.seed ? *s.seed : script::random_seed();
  o.time_scale = s.time_scale;
  o.limits.memory_bytes = s.lua_memory;
  o.limits.instructions = s.lua_instructions;
  o.params = scenario_params(s);
  return o;
}

std::map<std::string, std::string> scenario_params(const config::settings& s) {
  std::map<std::string, std::string> params;
  for (const auto& item : s.scenario_params) {  // KEY=VALUE, checked when read; a later one wins
    const auto eq = item.find('=');
    params[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return params;
}

std::optional<std::string> read_file_and_environment(config::settings& s,
                                                     const configuration_file& config,
                                                     char** envp) {
  const std::string& file = config.path;
  if (!file.empty()) {
    if (auto r = config::apply_file(s, file); !r) {
      // A file nobody named on the command line: say where its name came from.
      const bool missing = r.error().message.starts_with(file + ": cannot open file");
      return (config.from_environment && missing ? "SMTPFAULT_CONFIG=" : "") + r.error().message;
    }
  }
  if (auto r = config::apply_environment(s, envp); !r) return r.error().message;
  // The other commands' tables and variables are theirs to use, but a slip in them is found
  // now, not when a health check fails later.
  return check_commands_configuration(file, envp);
}

std::optional<setting_text> parse_set(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos) return std::nullopt;
  const std::string key = text.substr(0, eq);
  return setting_text{key, text.substr(eq + 1), "--set " + key};
}

std::optional<std::string> apply_settings(config::settings& s,
                                          const std::vector<setting_text>& items) {
  // --set tls-listen=... and --tls-listen name the same key.
  const auto path_of = &config::key_of_flag;
  std::vector<setting_text> joined;
  for (const auto& item : items) {
    auto same = std::find_if(joined.begin(), joined.end(), [&](const setting_text& j) {
      return path_of(j.key) == path_of(item.key);
    });
    const auto key =
        std::find_if(config::known_keys().begin(), config::known_keys().end(),
                     [&](const config::key_info& k) { return k.path == path_of(item.key); });
    if (same == joined.end()) {
      joined.push_back(item);
    } else if (key != config::known_keys().end() && key->list) {
      // An empty list turns the thing off: given beside addresses, one of them is a slip.
      if (same->value.empty() && item.value.empty()) continue;  // none, twice
      if (same->value.empty() || item.value.empty()) {
        const auto shown = [](const setting_text& t) {
          return t.origin + (t.value.empty() ? " '' (none)" : " " + t.value);
        };
        return shown(*same) + " and " + shown(item) + " contradict each other: give one";
      }
      same->value += "," + item.value;
    } else {
      *same = item;  // a single value: the last one given wins, as with any flag
    }
  }
  for (const auto& j : joined) {
    if (auto r = config::apply_text(s, j.key, j.value, j.origin); !r) return r.error().message;
  }
  return std::nullopt;
}

}  // namespace smtpfault::app
