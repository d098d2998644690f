#!/usr/bin/env bash
# Holds 10,000 idle sessions (each greeted, each sent EHLO and got its reply), reports the
# server's RSS per session, and checks a new client still gets its greeting promptly.
# Usage: bench/idle.sh [SESSIONS]   (BIN=path/to/smtpfault to pick a binary)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
bin=${BIN:-build/release/smtpfault}
[ -x "$bin" ] || { echo "no binary at $bin (run make build first)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec /usr/bin/python3 - "$bin" "$n" <<'PY'
import os, resource, selectors, socket, subprocess, sys, time
sys.path.insert(0, "bench")
from compare import free_ports

binary, n = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 100:
    raise SystemExit("need %d descriptors, have %d (raise ulimit -n)" % (n + 100, soft))

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

port, tls_port, api_port = free_ports(3)
proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:%d" % port,
                         "--tls-listen", "127.0.0.1:%d" % tls_port,
                         "--api", "127.0.0.1:%d" % api_port, "--log-format", "none",
                         "--max-connections", str(n + 100), "--idle-timeout", "600"],
                        stdout=subprocess.DEVNULL)
try:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.01)
    time.sleep(0.2)
    base = rss_kib(proc.pid)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(s)
    # Greeting, then EHLO and its reply, on every socket.
    for s in socks:
        assert s.recv(512).startswith(b"220")
        s.sendall(b"EHLO idle.example\r\n")
    for s in socks:
        data = b""
        while not data.endswith(b"\r\n") or b"250 " not in data:
            data += s.recv(4096)
    time.sleep(0.5)
    held = rss_kib(proc.pid)
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        greeting = c.recv(512)
    greet_ms = (time.perf_counter() - t) * 1000
    per = (held - base) / n
    print("%d idle sessions: RSS %.1f MiB at rest, %.1f MiB held: %.2f KiB per session; "
          "a new client's greeting took %.1f ms (%s)" % (n, base / 1024, held / 1024, per,
          greet_ms, greeting[:3].decode()))
    print("target <= 8 KiB per session:", "met" if per <= 8 else "NOT met",
          "| greeting < 50 ms:", "met" if greet_ms < 50 else "NOT met")
    for s in socks:
        s.close()
finally:
    proc.terminate()
    proc.wait()
PY
