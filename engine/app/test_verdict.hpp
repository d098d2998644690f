// The verdict of one scenario run: which failure leads a FAIL's reason, what a PASS adds (a
// fault never met, an anomaly no check judged), and when the mailer's own TLS stopped it before
// anything could be tested.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "app/test_runner.hpp"
#include "capture/session_analysis.hpp"

namespace smtpfault::app {

using clock_time = std::chrono::system_clock::time_point;

// Sets r.outcome and r.reason from r.checks (already run and waived). tls_min_version: the
// oldest TLS version the server takes; test_ca: its certificate is the bundled test CA's;
// killed_at: when a run was killed at --timeout, whose closes were not the mailer's doing.
void decide(scenario_result& r, const std::vector<capture::session_summary>& sessions,
            const std::string& tls_min_version, bool test_ca,
            std::optional<clock_time> killed_at = std::nullopt);

// The failure decide() put first, when it is a check of what the mailer did rather than one
// that a kill at the timeout explains by itself; "" otherwise.
std::string own_failure(const scenario_result& r);

}  // namespace smtpfault::app
