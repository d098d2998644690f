#!/usr/bin/env bash
# Throughput of smtpfault against Postfix's smtp-sink, both driven by smtp-source, measured
# side by side in alternation (A B A B ...) with medians; plus server CPU per message, peak
# RSS and full-transaction latency. Appends the table to bench/RESULTS.md.
# Usage: bench/run.sh [ROUNDS]   (default 3; BIN=path/to/smtpfault to pick a binary)
#        bench/run.sh placement [ROUNDS]: both servers pinned next to smtp-source or on another
#        CPU, to tell the kernel's placement from the servers' own costs (bench/placement.py)
#        BENCH_SCALE=0.01 runs a hundredth of the messages (a check that the scripts work);
#        BENCH_RESULTS=FILE appends the table there instead of to bench/RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
script=bench/compare.py
if [ "${1:-}" = placement ]; then
  script=bench/placement.py
  shift
fi
rounds=${1:-3}
./bench/install-deps.sh
bin=${BIN:-build/release/smtpfault}
if [ -z "${BIN:-}" ]; then
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j "$(nproc)" --target smtpfault >/dev/null
fi
exec /usr/bin/python3 "$script" "$bin" "$rounds"
