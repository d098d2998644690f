// Turning settings into what the server and the scenario engine take; shared by serve and test.
#pragma once

#include <string>

#include "config/settings.hpp"
#include "net/server.hpp"
#include "script/scenario.hpp"

namespace smtpfault::app {

// Resolves listeners and copies limits; error is set (and the result unusable) on a bad address.
net::server_config make_server_config(const config::settings& s, std::string& error);

// Seed (random when not set), time scale and sandbox limits.
script::scenario_options scenario_options(const config::settings& s);

}  // namespace smtpfault::app
