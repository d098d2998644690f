#!/usr/bin/env bash
# User-space instructions per message of one smtpfault workload, counted by valgrind's
# callgrind. Unlike msg/s and CPU time on a shared machine, the count barely moves between runs,
# so it shows the effect of a change to the server's own code (not the kernel's share) reliably.
# Usage: bench/instructions.sh [MESSAGES] [-- serve options]   (default 4000 messages of 1 KB,
#        50 sessions reusing connections; SOURCE="-s 50" for a connection per message)
# Example: bench/instructions.sh 4000 -- --scenario bench/every-command.lua
# KEEP=FILE keeps the callgrind profile there, for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=4000
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  messages=$1
  shift
fi
[ "${1:-}" = "--" ] && shift
source_args=${SOURCE:--s 50 -d}
./bench/install-deps.sh valgrind
bin=${BIN:-build/release/smtpfault}
if [ -z "${BIN:-}" ]; then
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release -j "$(nproc)" --target smtpfault >/dev/null
fi
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
out=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$out"' EXIT
# Counted from the start of the I/O loop, so start-up (scenario loading, TLS keys) is left out;
# the restart that enables huge pages is skipped (valgrind runs its own allocator anyway).
_SMTPFAULT_HUGE_PAGE_RESTART=1 SMTPFAULT_THREADS=1 valgrind --tool=callgrind \
  --callgrind-out-file="$out/callgrind.out" --collect-atstart=no \
  --toggle-collect='smtpfault::net::server::run()' \
  "$bin" serve --listen "127.0.0.1:$port" --api '' --log-format none "$@" >"$out/server.log" 2>&1 &
server=$!
ready=0
for _ in $(seq 150); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ready=1 && break
  sleep 0.2
done
if [ "$ready" != 1 ]; then
  echo "the server under valgrind did not start; its output:" >&2
  cat "$out/server.log" >&2
  exit 1
fi
# shellcheck disable=SC2086
smtp-source $source_args -l 1024 -m "$messages" "127.0.0.1:$port" >/dev/null
kill -TERM "$server"
wait "$server" || true
server=""
total=$(callgrind_annotate "$out/callgrind.out" 2>/dev/null |
  awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
if [ -z "$total" ]; then
  echo "no instruction count: callgrind wrote no profile; server output:" >&2
  cat "$out/server.log" >&2
  exit 1
fi
[ -n "${KEEP:-}" ] && cp "$out/callgrind.out" "$KEEP"
echo "smtp-source $source_args -l 1024 -m $messages; serve options: ${*:-none}"
echo "instructions per message: $((total / messages))"
