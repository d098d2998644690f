// Turning settings into what the server and the scenario engine take; shared by serve and test.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "app/cli_args.hpp"
#include "config/settings.hpp"
#include "net/server.hpp"
#include "proto/expected.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

// A configured HOST:PORT as a socket address: an IP literal, or "localhost" for 127.0.0.1 (no
// name lookups). The error begins with `setting`, where the value was given (settings::named):
// "smtpfault.toml:2:10: key 'api': 'x:1' is not an IP address".
proto::expected<boost::asio::ip::tcp::endpoint, std::string> to_endpoint(
    const config::endpoint& ep, const std::string& setting);
// Where a client on this machine reaches ep: a wildcard address (listening everywhere) becomes
// the loopback address of its family.
boost::asio::ip::tcp::endpoint reachable_here(boost::asio::ip::tcp::endpoint ep);

// Resolves listeners and copies limits; error is set (and the result unusable) on a bad address.
net::server_config make_server_config(const config::settings& s, std::string& error);

// The configuration file (the --config value when given, else SMTPFAULT_CONFIG), then the
// SMTPFAULT_* variables, as serve reads them; a caller's flags go on top. Returns the error.
std::optional<std::string> read_file_and_environment(config::settings& s,
                                                     const configuration_file& file, char** envp);

// A configuration key from the command line: "--set KEY=VALUE", or a flag of its own.
struct setting_text {
  std::string key, value;
  std::string origin;  // how errors name it: "--set limits.text_line", "--listen"
};
// Splits the text of --set; nullopt when it is not KEY=VALUE.
std::optional<setting_text> parse_set(const std::string& text);
// Applies them on top of s; a list key given more than once accumulates ("a,b"), any other key
// takes the last value given.
std::optional<std::string> apply_settings(config::settings& s,
                                          const std::vector<setting_text>& items);

// Seed (random when not set), time scale and sandbox limits.
script::scenario_options scenario_options(const config::settings& s);
// scenario_params as the scenario's params table holds them.
std::map<std::string, std::string> scenario_params(const config::settings& s);

}  // namespace smtpfault::app
