// Why a command killed at --timeout was still running: a reply the scenario held back, a
// server that hangs, or a mailer that went silent, looped or outlived its last connection.
#pragma once

#include <chrono>
#include <string>

#include "script/expectations.hpp"

namespace smtpfault::app {

// Text to follow "timeout: the command was killed after N s" ("" when nothing is known).
// killed_at: when the first command killed at the timeout was gone; sessions of later runs
// started after it, and those of earlier runs before that run started.
std::string waiting_for_the_server(const script::run_outcome& run, double time_scale,
                                   double timeout, std::chrono::system_clock::time_point killed_at);

}  // namespace smtpfault::app
