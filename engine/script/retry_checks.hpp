// The built-in checks of what a mailer does after a refusal: retried_after_4xx (a temporary
// failure waited out and tried again, on a new connection or the same one) and
// no_retry_after_5xx (a permanent one not repeated).
#pragma once

#include "script/expectations.hpp"

namespace smtpfault::script {

check_result check_retry(const expectations& e, const run_outcome& run);
check_result check_no_retry(const run_outcome& run);

}  // namespace smtpfault::script
