// Everything `smtpfault serve` can be told, as plain data. Filled from defaults, then a TOML
// file, then SMTPFAULT_* environment variables, then command-line flags (later wins).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/limits.hpp"

namespace smtpfault::config {

// A hook call's budget; a client script (run) counts its whole run and keeps its own unless
// this one is changed.
inline constexpr std::uint64_t default_lua_instructions = 10'000'000;

struct endpoint {
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0", "::"
  std::uint16_t port = 0;

  // "127.0.0.1:2525" or "[::1]:2525"
  std::string to_string() const;
};

struct auth_user {
  std::string name;
  std::string password;
};

struct settings {
  std::vector<endpoint> listen{{"127.0.0.1", 2525}};
  std::vector<endpoint> tls_listen{{"127.0.0.1", 2465}};
  endpoint api{"127.0.0.1", 8025};           // an empty host: no HTTP API
  double api_request_timeout = 15;           // seconds to read one HTTP request, write its reply
  std::string api_token;                     // bearer token the HTTP API asks for; empty = none
  std::string hostname = "smtpfault.test";   // used in the greeting and EHLO reply
  std::string scenario;                      // path or built-in name; empty = accept-all
  std::vector<std::string> scenario_params;  // "KEY=VALUE": the scenario's `params` table
  std::optional<std::uint64_t> seed;         // printed at start when chosen at random
  double time_scale = 1.0;
  std::string store;                // directory for .eml/.json; empty = memory only
  std::string log_format = "text";  // "text" or "json"
  bool lmtp = false;
  unsigned threads = 0;  // 0 = one per two cores
  std::size_t max_connections = 1000;
  double command_timeout = 60;        // seconds for one command line once it has begun
  double idle_timeout = 300;          // seconds; RFC 5321 4.5.3.2.7 asks for >= 5 min
  double data_timeout = 3600;         // seconds for a message's text (DATA) or a BDAT chunk
  double tls_handshake_timeout = 30;  // seconds
  std::string tls_cert;               // PEM files; empty = made at start-up, signed by the test CA
  std::string tls_key;
  std::vector<std::string> tls_names;   // more names for the generated certificate
  std::string tls_min_version = "1.2";  // the oldest TLS version taken: "1.0" to "1.3"
  std::vector<auth_user> auth_users;    // empty = any credentials are accepted
  proto::limits limits;
  std::uint64_t lua_memory = 64 * 1024 * 1024;                // bytes for the scenario's Lua state
  std::uint64_t lua_instructions = default_lua_instructions;  // per hook call
  // What the server keeps in memory for the API; the oldest go first (files in `store` stay).
  std::size_t retain_messages = 10'000;
  std::uint64_t retain_message_bytes = 64 * 1024 * 1024;  // message bodies
  std::size_t retain_sessions = 1000;                     // finished sessions' transcripts

  // Where each key set so far got its value, for a mistake found only when the value is used
  // (a scenario file that is not there): "smtpfault.toml:3:12: key 'scenario'",
  // "environment variable SMTPFAULT_SCENARIO" or "--scenario". "" for a default.
  std::map<std::string, std::string, std::less<>> origins;
  std::string origin_of(std::string_view key) const {
    auto it = origins.find(key);
    return it == origins.end() ? std::string() : it->second;
  }
  // The origin, or the key itself for a value nobody set: how a message names the setting.
  std::string named(std::string_view key) const {
    auto origin = origin_of(key);
    return origin.empty() ? std::string(key) : origin;
  }
};

// One item of scenario_params ("window=5"): "" when acceptable, else the reason (also for the
// API's params, which come as a JSON object).
std::string scenario_param_problem(const std::string& item);

}  // namespace smtpfault::config
