#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR for SECONDS each, seeded from fixtures/fuzz.
# Prints executions and executions per second per target; exits 1 on the first finding.
set -euo pipefail
build=${1:?usage: ci/fuzz.sh BUILD_DIR SECONDS}
seconds=${2:-60}
cd "$(dirname "$0")/.."
status=0
for target in "$build"/tests/fuzz/fuzz_*; do
  name=$(basename "$target")
  corpus="$build/corpus/$name"
  mkdir -p "$corpus" "$build/findings/$name"
  log="$build/$name.log"
  if "$target" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$build/findings/$name/" "$corpus" "fixtures/fuzz/$name" >"$log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
    rate=$(grep -Eo 'exec/s: *[0-9]+' "$log" | tail -1 | grep -Eo '[0-9]+$' || echo '?')
    printf '%-22s ok   %12s runs %8s exec/s\n' "$name" "$runs" "$rate"
  else
    printf '%-22s FINDING, see %s and %s\n' "$name" "$log" "$build/findings/$name"
    status=1
  fi
done
exit $status
