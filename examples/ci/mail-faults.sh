#!/usr/bin/env bash
# Runs smtpfault's built-in scenario catalogue against a mailer command and writes a JUnit
# report for the CI system to render. Called by the example workflows in this folder, from the
# project under test, with smtpfault checked out beside it (in ./smtpfault):
#
#   smtpfault/examples/ci/mail-faults.sh [smtpfault test options] -- MAILER COMMAND...
#
# SMTPFAULT: an smtpfault binary to use; without it, one is built from the smtpfault checkout
# this script is in (Debian 12 packages via its ci/install-deps.sh, a Release build without the
# tests).
# REPORT: where the JUnit XML goes (default smtpfault-report.xml).
# The mailer finds the server in SMTP_HOST, SMTP_PORT and SMTP_TLS_PORT, the test CA to trust in
# SMTP_CA_FILE, and credentials the server takes in SMTP_USER and SMTP_PASSWORD.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${SMTPFAULT:-}" ]; then
  "$root/ci/install-deps.sh"
  cmake -S "$root" -B "$root/build/ci" -DCMAKE_BUILD_TYPE=Release -DSMTPFAULT_TESTS=OFF >/dev/null
  cmake --build "$root/build/ci" -j "$(nproc)" --target smtpfault >/dev/null
  SMTPFAULT=$root/build/ci/smtpfault
fi
# --time-scale shortens the scenarios' waits (greylisting windows, slow replies) for CI; the
# exit status is 0 only when every scenario passed.
exec "$SMTPFAULT" test --time-scale 0.02 --jobs 2 --junit "${REPORT:-smtpfault-report.xml}" "$@"
