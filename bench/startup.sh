#!/usr/bin/env bash
# Time from process start to accepting a connection and sending the greeting, median of 20 runs.
# Usage: bench/startup.sh [path/to/smtpfault]   (default: build/release/smtpfault)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release/smtpfault}
[ -x "$bin" ] || { echo "no binary at $bin (run make build first)" >&2; exit 2; }
/usr/bin/python3 - "$bin" <<'PY'
import os, socket, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, "bench")
from compare import free_ports

binary = sys.argv[1]

def one_run():
    port, tls_port, api_port = free_ports(3)
    start = time.perf_counter()
    # Every port its own, so a server already running here (on the default API port) is no
    # obstacle; the API is still started, as it is by default.
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}",
                             "--tls-listen", f"127.0.0.1:{tls_port}",
                             "--api", f"127.0.0.1:{api_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    if c.recv(64).startswith(b"220"):
                        return time.perf_counter() - start
            except (ConnectionRefusedError, OSError):
                if time.perf_counter() - start > 5:
                    raise SystemExit("server did not start within 5 s")
                time.sleep(0.0005)
    finally:
        proc.terminate()
        proc.wait()

times = [one_run() for _ in range(20)]
median_ms = statistics.median(times) * 1000
print(f"startup to first greeting: median {median_ms:.1f} ms, "
      f"min {min(times)*1000:.1f} ms, max {max(times)*1000:.1f} ms (20 runs)")
print("target: < 100 ms:", "met" if median_ms < 100 else "NOT met")
PY
