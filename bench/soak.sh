#!/usr/bin/env bash
# Bounded soak: mixed client load (smtplib over plain, STARTTLS and implicit TLS, hostile raw
# probes, API readers) while the built-in catalogue scenarios rotate through the HTTP API. Prints
# RSS and open descriptors over time; exits 1 when either grows after warm-up (criterion in
# bench/soak.py).
# Usage: bench/soak.sh [SECONDS] [path/to/smtpfault]
#   SECONDS defaults to $SOAK_SECONDS, else 600; the binary to build/release/smtpfault.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${SOAK_SECONDS:-600}}
bin=${2:-${SMTPFAULT_BIN:-build/release/smtpfault}}
[ -x "$bin" ] || { echo "no binary at $bin (run make build first)" >&2; exit 2; }
exec /usr/bin/python3 bench/soak.py "$bin" "$seconds"
