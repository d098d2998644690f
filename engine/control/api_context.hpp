// What the HTTP API handlers reach: the SMTP server (scenario, rules, metrics), the message
// store and the API's own settings. Handlers run on the API's single thread; the server and the
// store are thread-safe on their own.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_set>

#include <boost/asio/steady_timer.hpp>

#include "capture/message_store.hpp"
#include "net/server.hpp"
#include "script/scenario.hpp"

namespace smtpfault::control {

struct api_options {
  std::string token;                                  // empty = no Authorization needed
  std::chrono::milliseconds request_timeout{15'000};  // to read one request, and to write a reply
  std::size_t body_limit = 1024 * 1024;
  std::chrono::seconds max_wait{300};  // the longest long-poll
};

struct api_context {
  net::server& server;
  capture::message_store& store;
  api_options options;
  // For PUT /api/v1/scenario: time scale and sandbox limits, and the seed when one was set.
  script::scenario_options scenario_defaults;
  std::optional<std::uint64_t> fixed_seed;
  // The run's seed, time scale and params while no scenario is loaded (accept-all): the
  // start-up ones, then those of a PUT of accept-all (shown, though accept-all reads none).
  script::scenario_options accept_all_options = scenario_defaults;
  // Sessions that started before the scenario switch do not count for its expectations.
  std::chrono::system_clock::time_point scenario_since = std::chrono::system_clock::now();
  // Messages stored before then: `delivered` counts from the store's running total, which
  // neither DELETE /api/v1/messages nor the retention limits take back.
  std::uint64_t stored_before = 0;

  // API thread only. Once the server stops, a pending long-poll answers at once (503) instead
  // of being dropped without a reply; the API waits for the requests being answered.
  bool stopping = false;
  std::unordered_set<boost::asio::steady_timer*> long_polls{};
  std::size_t answering = 0;  // requests between being read and their reply being written
};

}  // namespace smtpfault::control
