// The key registry: one table of key descriptors drives the TOML file, the environment, flags
// and --help, so a key added here is reachable from every source at once and cannot be
// documented in only one place. Endpoints' text forms are in endpoint.cpp.
#include "config/settings.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <type_traits>

#include "config/keys.hpp"
#include "config/loader.hpp"
#include "proto/address.hpp"
#include "proto/number_text.hpp"

namespace smtpfault::config {

// One of scenario_params: KEY=VALUE, the key a Lua name (params.window); NUL would cut it short.
std::string scenario_param_problem(const std::string& item) {
  const auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0) return "expected KEY=VALUE, got '" + item + "'";
  const auto word = [](unsigned char c) { return std::isalnum(c) || c == '_'; };
  if (std::isdigit(static_cast<unsigned char>(item[0])) ||
      !std::all_of(item.begin(), item.begin() + static_cast<std::ptrdiff_t>(eq), word)) {
    return "the key of '" + item + "' must be a name: letters, digits and _, not first a digit";
  }
  if (item.find('\0') != std::string::npos) return "must not hold a NUL";
  return {};
}

}  // namespace smtpfault::config

namespace smtpfault::config::detail {
namespace {

void assign(std::string& field, value&& v) {
  field = std::get<std::string>(std::move(v));
}
void assign(bool& field, value&& v) {
  field = std::get<bool>(v);
}
void assign(double& field, value&& v) {
  field = std::get<double>(v);
}
void assign(endpoint& field, value&& v) {
  field = std::get<endpoint>(std::move(v));
}
void assign(std::vector<endpoint>& field, value&& v) {
  field = std::get<std::vector<endpoint>>(std::move(v));
}
void assign(std::vector<std::string>& field, value&& v) {
  field = std::get<std::vector<std::string>>(std::move(v));
}
void assign(std::vector<auth_user>& field, value&& v) {
  field = std::get<std::vector<auth_user>>(std::move(v));
}
void assign(std::optional<std::uint64_t>& field, value&& v) {
  field = std::get<std::uint64_t>(v);
}
template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) void assign(T& field, value&& v) {
  // The descriptor's max already fits T, so the narrowing cannot lose bits.
  field = static_cast<T>(std::get<std::uint64_t>(v));
}

template <auto member>
void set_top(settings& s, value&& v) {
  assign(s.*member, std::move(v));
}
template <auto member>
void set_limit(settings& s, value&& v) {
  assign(s.limits.*member, std::move(v));
}

// A value as it would be written in a flag, for the defaults --help shows ("" for none).
std::string shown(const std::string& v) {
  return v;  // an empty one is said by the help text ("empty = none")
}
std::string shown(bool v) {
  return v ? "true" : "false";
}
std::string shown(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
std::string shown(const endpoint& v) {
  return v.host.empty() ? "''" : v.to_string();
}
std::string shown(const std::vector<endpoint>& v) {
  std::string out;
  for (const auto& e : v)
    out += (out.empty() ? "" : ",") + e.to_string();
  return out.empty() ? "''" : out;
}
std::string shown(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& name : v)
    out += (out.empty() ? "" : ",") + name;
  return out;
}
std::string shown(const std::vector<auth_user>&) {
  return "";  // nobody: any credentials pass
}
std::string shown(const std::optional<std::uint64_t>& v) {
  return v ? std::to_string(*v) : "";
}
template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) std::string shown(T v) {
  return std::to_string(v);
}

template <auto member>
std::string show_top(const settings& s) {
  return shown(s.*member);
}
template <auto member>
std::string show_limit(const settings& s) {
  return shown(s.limits.*member);
}

constexpr std::string_view log_formats[] = {"text", "json", "none"};
constexpr std::string_view tls_versions[] = {"1.0", "1.1", "1.2", "1.3"};
constexpr std::uint64_t max_unsigned = std::numeric_limits<unsigned>::max();
// Timeouts longer than a year are typos; far longer ones would overflow the timers. Shorter
// than a millisecond, every session would time out before its first command.
constexpr double year_seconds = 365.0 * 24 * 3600;
constexpr double shortest_timeout = 0.001;
// A command or AUTH line is held whole until its end: the limit is memory per session.
constexpr std::uint64_t longest_line_limit = 1024 * 1024;

// The name in the greeting and the EHLO reply: one word of printable ASCII that fits a reply
// line (CR or LF in it would end the reply early).
std::string hostname_problem(const std::string& name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 255) return "must be at most 255 octets, got " + std::to_string(name.size());
  for (char c : name) {
    if (c <= ' ' || c > '~') return "must be one word of printable ASCII (no spaces, CR or LF)";
  }
  return {};
}

constexpr key_desc keys[] = {
    {.path = "listen",
     .type = kind::address_list,
     .help =
         "plain SMTP listeners, HOST:PORT or [IPV6]:PORT (port 0 = ephemeral); an array (or one "
         "string) in TOML, comma-separated in the environment and flags; empty = none",
     .set = &set_top<&settings::listen>,
     .show = &show_top<&settings::listen>},
    {.path = "tls_listen",
     .type = kind::address_list,
     .help = "implicit-TLS (SMTPS) listeners, same form as listen",
     .set = &set_top<&settings::tls_listen>,
     .show = &show_top<&settings::tls_listen>},
    {.path = "api",
     .type = kind::address,
     .help = "HTTP control API listener, HOST:PORT; empty = no API",
     .set = &set_top<&settings::api>,
     .show = &show_top<&settings::api>},
    {.path = "api_request_timeout",
     .type = kind::number,
     .help = "seconds the HTTP API allows to read one request and to write its reply (> 0)",
     .set = &set_top<&settings::api_request_timeout>,
     .show = &show_top<&settings::api_request_timeout>,
     .positive = true,
     .most = year_seconds},
    {.path = "api_token",
     .type = kind::string,
     .help = "bearer token the HTTP API requires (Authorization: Bearer TOKEN); empty = none",
     .set = &set_top<&settings::api_token>,
     .show = &show_top<&settings::api_token>},
    {.path = "hostname",
     .type = kind::string,
     .help = "name used in the greeting and the EHLO reply (one word, at most 255 octets)",
     .set = &set_top<&settings::hostname>,
     .show = &show_top<&settings::hostname>,
     .rule = &hostname_problem},
    {.path = "scenario",
     .type = kind::string,
     .help = "scenario file or built-in name; empty = accept everything",
     .set = &set_top<&settings::scenario>,
     .show = &show_top<&settings::scenario>},
    {.path = "scenario_params",
     .type = kind::name_list,
     .help = "values for the scenario's params table, KEY=VALUE each (window=5): an array in "
             "TOML, comma-separated in the environment and flags; the built-in scenarios say "
             "which they read",
     .set = &set_top<&settings::scenario_params>,
     .show = &show_top<&settings::scenario_params>,
     .rule = &scenario_param_problem},
    {.path = "seed",
     .type = kind::unsigned_int,
     .help = "random seed; unset = chosen at random and printed at start (TOML integers stop at "
             "2^63-1)",
     .set = &set_top<&settings::seed>,
     .show = &show_top<&settings::seed>},
    {.path = "time_scale",
     .type = kind::number,
     .help = "multiplier for scenario delays and timeouts (> 0, at most 1000000)",
     .set = &set_top<&settings::time_scale>,
     .show = &show_top<&settings::time_scale>,
     .positive = true,
     .most = 1e6},
    {.path = "store",
     .type = kind::string,
     .help = "directory for captured .eml/.json files; empty = memory only",
     .set = &set_top<&settings::store>,
     .show = &show_top<&settings::store>},
    {.path = "log_format",
     .type = kind::string,
     .help =
         "log line format: \"text\", \"json\", or \"none\" (transcripts still kept for the API)",
     .set = &set_top<&settings::log_format>,
     .show = &show_top<&settings::log_format>,
     .choices = log_formats},
    {.path = "lmtp",
     .type = kind::boolean,
     .help = "speak LMTP (LHLO, one reply per recipient) instead of SMTP",
     .set = &set_top<&settings::lmtp>,
     .show = &show_top<&settings::lmtp>},
    {.path = "threads",
     .type = kind::unsigned_int,
     .help = "worker threads; 0 = one per two cores (at most 256: each holds a listener per port)",
     .set = &set_top<&settings::threads>,
     .show = &show_top<&settings::threads>,
     .max = 256},
    {.path = "max_connections",
     .type = kind::unsigned_int,
     .help = "simultaneous connections before refusing (>= 1)",
     .set = &set_top<&settings::max_connections>,
     .show = &show_top<&settings::max_connections>,
     .min = 1},
    {.path = "command_timeout",
     .type = kind::number,
     .help = "seconds a command line may take from its first octet to its end (at least "
             "0.001); stops "
             "clients that drip a line byte by byte (slowloris)",
     .set = &set_top<&settings::command_timeout>,
     .show = &show_top<&settings::command_timeout>,
     .positive = true,
     .most = year_seconds,
     .least = shortest_timeout},
    {.path = "idle_timeout",
     .type = kind::number,
     .help = "seconds a client may stay silent (at least 0.001)",
     .set = &set_top<&settings::idle_timeout>,
     .show = &show_top<&settings::idle_timeout>,
     .positive = true,
     .most = year_seconds,
     .least = shortest_timeout},
    {.path = "data_timeout",
     .type = kind::number,
     .help = "seconds a message's text may take, from 354 to the final dot, or one BDAT chunk "
             "(at least 0.001); stops clients that drip a message",
     .set = &set_top<&settings::data_timeout>,
     .show = &show_top<&settings::data_timeout>,
     .positive = true,
     .most = year_seconds,
     .least = shortest_timeout},
    {.path = "tls_handshake_timeout",
     .type = kind::number,
     .help = "seconds allowed for a TLS handshake (at least 0.001)",
     .set = &set_top<&settings::tls_handshake_timeout>,
     .show = &show_top<&settings::tls_handshake_timeout>,
     .positive = true,
     .most = year_seconds,
     .least = shortest_timeout},
    {.path = "tls.cert",
     .type = kind::string,
     .help = "PEM certificate chain; empty = one made at start-up, signed by the bundled test CA "
             "(smtpfault ca prints it)",
     .set = &set_top<&settings::tls_cert>,
     .show = &show_top<&settings::tls_cert>},
    {.path = "tls.key",
     .type = kind::string,
     .help = "PEM private key for tls.cert",
     .set = &set_top<&settings::tls_key>,
     .show = &show_top<&settings::tls_key>},
    {.path = "tls.names",
     .type = kind::name_list,
     .help = "more DNS names or IP addresses for the certificate made at start-up and the "
             "certificate faults (they always have hostname, localhost, 127.0.0.1 and ::1), e.g. "
             "a compose service name; an array (or one string) in TOML, comma-separated in the "
             "environment and flags",
     .set = &set_top<&settings::tls_names>,
     .show = &show_top<&settings::tls_names>},
    {.path = "tls.min_version",
     .type = kind::string,
     .help = "the oldest TLS version the server takes: \"1.2\" (default) or \"1.3\"; \"1.0\" or "
             "\"1.1\" for a legacy client (also at OpenSSL's security level 0, with its old "
             "cipher suites)",
     .set = &set_top<&settings::tls_min_version>,
     .show = &show_top<&settings::tls_min_version>,
     .choices = tls_versions},
    {.path = "limits.command_line",
     .type = kind::unsigned_int,
     .help = "longest command line in bytes, with CRLF (64 to 1048576)",
     .set = &set_limit<&proto::limits::command_line>,
     .show = &show_limit<&proto::limits::command_line>,
     .min = 64,
     .max = longest_line_limit},
    {.path = "limits.text_line",
     .type = kind::unsigned_int,
     .help = "longest DATA line in bytes, with CRLF; 0 = no limit",
     .set = &set_limit<&proto::limits::text_line>,
     .show = &show_limit<&proto::limits::text_line>},
    {.path = "limits.auth_line",
     .type = kind::unsigned_int,
     .help = "longest AUTH response line in bytes (64 to 1048576)",
     .set = &set_limit<&proto::limits::auth_line>,
     .show = &show_limit<&proto::limits::auth_line>,
     .min = 64,
     .max = longest_line_limit},
    {.path = "limits.max_recipients",
     .type = kind::unsigned_int,
     .help = "RCPT TO accepted per message (>= 1)",
     .set = &set_limit<&proto::limits::max_recipients>,
     .show = &show_limit<&proto::limits::max_recipients>,
     .min = 1},
    {.path = "limits.max_message_size",
     .type = kind::unsigned_int,
     .help = "SIZE advertised and enforced; 0 = no limit",
     .set = &set_limit<&proto::limits::max_message_size>,
     .show = &show_limit<&proto::limits::max_message_size>},
    {.path = "limits.local_part",
     .type = kind::unsigned_int,
     .help = "longest local part of an address (1 to 1048576: 0 would refuse every address)",
     .set = &set_limit<&proto::limits::local_part>,
     .show = &show_limit<&proto::limits::local_part>,
     .min = 1,
     .max = longest_line_limit},
    {.path = "limits.domain",
     .type = kind::unsigned_int,
     .help = "longest domain of an address (1 to 1048576: 0 would refuse every address)",
     .set = &set_limit<&proto::limits::domain>,
     .show = &show_limit<&proto::limits::domain>,
     .min = 1,
     .max = longest_line_limit},
    {.path = "limits.path",
     .type = kind::unsigned_int,
     .help = "longest reverse/forward path, with the angle brackets (1 to 1048576: 0 would refuse "
             "every address)",
     .set = &set_limit<&proto::limits::path>,
     .show = &show_limit<&proto::limits::path>,
     .min = 1,
     .max = longest_line_limit},
    {.path = "lua.memory",
     .type = kind::unsigned_int,
     .help = "memory cap of a scenario's Lua state in bytes (default 64 MiB)",
     .set = &set_top<&settings::lua_memory>,
     .show = &show_top<&settings::lua_memory>,
     .min = 1024 * 1024},
    {.path = "lua.instructions",
     .type = kind::unsigned_int,
     .help = "Lua instructions one hook call may run before it is stopped (default 10 million)",
     .set = &set_top<&settings::lua_instructions>,
     .show = &show_top<&settings::lua_instructions>,
     .min = 1000},
    {.path = "retain.messages",
     .type = kind::unsigned_int,
     .help = "messages kept in memory for the API (>= 1); the oldest are forgotten first (files "
             "in store stay)",
     .set = &set_top<&settings::retain_messages>,
     .show = &show_top<&settings::retain_messages>,
     .min = 1},
    {.path = "retain.message_bytes",
     .type = kind::unsigned_int,
     .help = "message octets kept in memory for the API (>= 1, default 64 MiB); the newest "
             "message is kept even when it alone is bigger",
     .set = &set_top<&settings::retain_message_bytes>,
     .show = &show_top<&settings::retain_message_bytes>,
     .min = 1},
    {.path = "retain.sessions",
     .type = kind::unsigned_int,
     .help = "finished sessions (transcripts) kept in memory for the API (>= 1)",
     .set = &set_top<&settings::retain_sessions>,
     .show = &show_top<&settings::retain_sessions>,
     .min = 1},
    {.path = "auth.users",
     .type = kind::users,
     .help =
         "AUTH accounts: a TOML table of name = \"password\" ([auth.users] alice = \"secret\"); "
         "NAME:PASSWORD,... in the environment and flags (split at the first ':', so names hold no "
         "':' and neither holds ','); empty = any credentials are accepted",
     .set = &set_top<&settings::auth_users>,
     .show = &show_top<&settings::auth_users>},
};

}  // namespace

std::span<const key_desc> all_keys() {
  return keys;
}

std::string env_name(std::string_view path) {
  std::string name(env_prefix);
  for (char c : path) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::string_view type_word(kind k) {
  constexpr std::string_view words[] = {"string",  "bool",         "unsigned", "number",
                                        "address", "address list", "users",    "name list"};
  return words[static_cast<int>(k)];
}

std::string_view expectation(kind k) {
  constexpr std::string_view words[] = {"a string",
                                        "a boolean",
                                        "an integer",
                                        "a number",
                                        "an address string",
                                        "an array of address strings",
                                        "a table of name = \"password\"",
                                        "an array of name strings"};
  return words[static_cast<int>(k)];
}

const key_desc* find_key(std::string_view path) {
  for (const auto& d : keys) {
    if (d.path == path) return &d;
  }
  return nullptr;
}

const key_desc* find_env(std::string_view name) {
  for (const auto& d : keys) {
    if (env_name(d.path) == name) return &d;
  }
  return nullptr;
}

bool is_section(std::string_view path) {
  return std::any_of(std::begin(keys), std::end(keys), [&](const key_desc& d) {
    return d.path.size() > path.size() && d.path.starts_with(path) && d.path[path.size()] == '.';
  });
}

std::vector<std::string> path_candidates() {
  // The commands' tables too: "[sned]" is more likely [send] than seed.
  std::vector<std::string> names{"send", "run", "test", "healthcheck"};
  for (const auto& d : keys) {
    names.emplace_back(d.path);
    const auto dot = d.path.rfind('.');
    if (dot != std::string_view::npos) names.emplace_back(d.path.substr(0, dot));
  }
  return names;
}

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

std::string check(const key_desc& d, const value& v) {
  if (const auto* u = std::get_if<std::uint64_t>(&v)) {
    if (*u < d.min)
      return "must be at least " + std::to_string(d.min) + ", got " + std::to_string(*u);
    if (*u > d.max)
      return "must be at most " + std::to_string(d.max) + ", got " + std::to_string(*u);
  } else if (const auto* x = std::get_if<double>(&v)) {
    if (!std::isfinite(*x)) return "must be a finite number, got " + proto::number_text(*x);
    if (d.positive && !(*x > 0)) return "must be greater than 0, got " + proto::number_text(*x);
    if (*x < d.least)
      return "must be at least " + proto::number_text(d.least) + ", got " + proto::number_text(*x);
    if (d.most > 0 && *x > d.most)
      return "must be at most " + proto::number_text(d.most) + ", got " + proto::number_text(*x);
  } else if (const auto* names = std::get_if<std::vector<std::string>>(&v)) {
    for (const auto& name : *names) {
      auto problem = d.rule ? d.rule(name) : proto::certificate_name_problem(name);
      if (!problem.empty()) return problem;
    }
  } else if (const auto* s = std::get_if<std::string>(&v); s && d.rule) {
    return d.rule(*s);
  } else if (s && !d.choices.empty()) {
    if (std::find(d.choices.begin(), d.choices.end(), *s) == d.choices.end()) {
      std::string allowed;
      for (auto c : d.choices) {
        allowed += (allowed.empty() ? "" : ", ") + quoted(c);
      }
      return "must be one of " + allowed + "; got " + quoted(*s);
    }
  }
  return {};
}

}  // namespace smtpfault::config::detail
