"""Bounded soak: `smtpfault serve` under mixed client load while the HTTP API rotates through
every built-in catalogue scenario. Samples the server's RSS and open descriptors, prints them as
a table, and fails (exit 1) when either keeps growing after warm-up.

Run through bench/soak.sh. The catalogue is rotated at least three times when the run is long
enough (a scenario every 3 s or more). Criterion, over the samples after warm-up (the first pass
over the catalogue, but at least 30 s or 20% of the run and at most half of it), split into
thirds:
  RSS  the mean of the last third may exceed the mean of the first third by at most 10%;
  FDs  the mean of the last third may exceed the mean of the first third by at most 10 (the
       count moves with the open sessions), and once the load stops and every session has
       ended, the count must be back to that of the idle server at the start (+2).
Captured messages and session records are cleared through the API at every sample, as a test
suite does between tests: the in-memory store is bounded by design (100,000 messages or 256 MiB),
and its fill level is not what this run measures. (The allocator keeps the pages of freed
messages, so RSS follows the highest fill level seen, which is why the clearing is frequent.)
"""

import argparse
import json
import os
import random
import re
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

LISTEN_RE = re.compile(r"listening: (smtps?|http)\s+(\S+):(\d+)")


class Server:
    def __init__(self, binary, idle_timeout):
        cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
               "--api", "127.0.0.1:0", "--time-scale", "0.05",
               "--idle-timeout", str(idle_timeout), "--max-connections", "2000"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     env={k: v for k, v in os.environ.items()
                                          if not k.startswith("SMTPFAULT_")})
        self.ports = {}
        deadline = time.monotonic() + 10
        while len(self.ports) < 3:
            line = self.proc.stdout.readline().decode("utf-8", "replace")
            if not line or time.monotonic() > deadline:
                raise SystemExit("soak: the server did not start: %r" % self.proc.stderr.read())
            m = LISTEN_RE.search(line)
            if m:
                self.ports[m.group(1)] = int(m.group(3))
        # The transcript goes on at full speed: drain it so the server never blocks on stdout.
        for pipe in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=lambda p=pipe: [None for _ in iter(lambda: p.read(65536), b"")],
                             daemon=True).start()

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.ports["http"], path),
                                     data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, raw

    def active_sessions(self):
        _, raw = self.api("GET", "/metrics")
        m = re.search(rb"^smtpfault_sessions_active (\d+)", raw, re.M)
        return int(m.group(1)) if m else -1

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))


class Load:
    """Client threads; each loops until stop is set and counts what happened."""

    def __init__(self, server, seed):
        self.server = server
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"sessions": 0, "delivered": 0, "refused": 0, "hostile": 0, "api": 0}
        self.seed = seed

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def start(self, mailers=6, tls_mailers=2, hostile=2):
        workers = ([self.mailer] * mailers + [self.tls_mailer] * tls_mailers +
                   [self.hostile] * hostile + [self.api_reader])
        self.threads = [threading.Thread(target=w, args=(random.Random(self.seed + i),),
                                         daemon=True) for i, w in enumerate(workers)]
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    @staticmethod
    def tls_context():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def message(self, rng, n):
        body = "".join("line %d of a soak message %s\r\n" % (i, "x" * rng.randint(0, 300))
                       for i in range(rng.randint(1, 60)))
        return ("From: soak@example.com\r\nTo: rcpt@example.com\r\nSubject: soak %d\r\n\r\n%s"
                % (n, body))

    def deliver(self, rng, smtp):
        smtp.ehlo("soak.example")
        if smtp.has_extn("starttls") and rng.random() < 0.3:
            smtp.starttls(context=self.tls_context())
            smtp.ehlo("soak.example")
        if smtp.has_extn("auth") and rng.random() < 0.3:
            smtp.login("soak", "secret")
        for _ in range(rng.randint(1, 3)):
            rcpts = ["r%d@example.com" % rng.randint(0, 999) for _ in range(rng.randint(1, 5))]
            smtp.sendmail("soak@example.com", rcpts, self.message(rng, rng.randint(0, 10**6)))
            self.count("delivered")
        smtp.quit()

    def paced(self, interval):
        """Yields at most once per interval until stopped: a steady load, the same on every
        pass over the catalogue, so memory after warm-up can be compared (bench/run.sh is
        where throughput is measured)."""
        next_at = time.monotonic()
        while not self.stop.is_set():
            yield
            next_at += interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at, time.monotonic() - interval)

    def run_client(self, rng, connect):
        for _ in self.paced(0.05):
            self.count("sessions")
            try:
                with connect() as smtp:
                    self.deliver(rng, smtp)
            except (smtplib.SMTPException, OSError, ValueError):
                self.count("refused")   # faults are the point: any failure is expected

    def mailer(self, rng):
        self.run_client(rng, lambda: smtplib.SMTP("127.0.0.1", self.server.ports["smtp"],
                                                  timeout=10))

    def tls_mailer(self, rng):
        self.run_client(rng, lambda: smtplib.SMTP_SSL("127.0.0.1", self.server.ports["smtps"],
                                                      timeout=10, context=self.tls_context()))

    def hostile(self, rng):
        probes = [
            b"EHLO x\r\n" + b"A" * 300000 + b"\r\n",
            b"EHLO x\r\nAUTH PLAIN !!!\r\nAUTH LOGIN\r\n" + b"Q" * 13000 + b"\r\n",
            b"EHLO x\r\nMAIL FROM:<a@b.example>\r\n" +
            b"".join(b"RCPT TO:<u%d@example.com>\r\n" % i for i in range(1200)),
            b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 100000 LAST\r\n"
            + b"z" * 5000,
            b"EHLO x\r\nMAIL FROM:<\xff\xfe@x.example> SMTPUTF8\r\nNO\x00OP\r\n",
            b"EHLO x\r\nSTARTTLS\r\n" + bytes(rng.randrange(256) for _ in range(600)),
            b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
            b"Subject: cut\r\n\r\nhalf a mess",
        ]
        for _ in self.paced(0.1):
            self.count("hostile")
            tls_port = rng.random() < 0.2
            port = self.server.ports["smtps" if tls_port else "smtp"]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(bytes(rng.randrange(256) for _ in range(300)) if tls_port
                              else rng.choice(probes))
                    end = time.monotonic() + rng.uniform(0, 0.5)
                    while time.monotonic() < end and s.recv(65536):
                        pass
                    if rng.random() < 0.5:   # a reset instead of a close
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass

    def api_reader(self, rng):
        paths = ["/api/v1/messages", "/api/v1/sessions", "/metrics", "/api/v1/scenario",
                 "/healthz", "/api/v1/faults", "/api/v1/expectations"]
        while not self.stop.wait(0.5):
            try:
                self.server.api("GET", rng.choice(paths))
                self.count("api")
            except OSError:
                pass


def scenario_names(root):
    names = sorted(n[:-4] for n in os.listdir(os.path.join(root, "scenarios"))
                   if n.endswith(".lua"))
    return names or ["accept-all"]


def warm_up(server):
    """A few sessions on every port and API calls, so each I/O thread has set up its reactor;
    returns the descriptors an idle server then holds."""
    for _ in range(8):
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
            s.noop()
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["smtps"], timeout=10,
                          context=Load.tls_context()) as s:
        s.noop()
    server.api("GET", "/healthz")
    if not wait_quiet(server, 10):
        raise SystemExit("soak: warm-up sessions did not end")
    return server.fds()


def wait_quiet(server, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.active_sessions() == 0:
            return True
        time.sleep(0.2)
    return False


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--sample", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = scenario_names(root)
    idle = 5
    server = Server(args.binary, idle)
    # At least three passes over the catalogue when the run allows; the first pass is the
    # warm-up (every scenario's code paths and allocations seen once), or 20% if longer.
    rotate = max(3.0, args.seconds / (3 * len(names)))
    warmup = max(30.0, 0.2 * args.seconds, min(rotate * len(names), 0.5 * args.seconds))
    print("soak: %s for %.0f s, %d scenarios, %.1f s each, sample every %.0f s, warm-up %.0f s"
          % (args.binary, args.seconds, len(names), rotate, args.sample, warmup))
    quiet_start = warm_up(server)
    load = Load(server, args.seed)
    load.start()
    samples = []   # (t, rss_kb, fds, active, scenario)
    quiet_fds = None
    start = time.monotonic()
    next_rotation, index, scenario = start, 0, "accept-all"
    print("%7s  %-26s %9s %5s %7s %9s %9s %9s" % ("t (s)", "scenario", "RSS (kB)", "fds",
                                                   "active", "sessions", "delivered", "hostile"))
    failed = []
    try:
        while True:
            now = time.monotonic()
            t = now - start
            if t >= args.seconds:
                break
            if server.proc.poll() is not None:
                failed.append("the server exited with %r" % server.proc.returncode)
                break
            if now >= next_rotation:
                scenario = names[index % len(names)]
                index += 1
                try:
                    server.api("PUT", "/api/v1/scenario", {"name": scenario})
                except urllib.error.HTTPError as e:
                    failed.append("PUT scenario %s: %d %r" % (scenario, e.code, e.read()))
                next_rotation = now + rotate
            server.api("DELETE", "/api/v1/messages")
            server.api("DELETE", "/api/v1/sessions")
            rss, fds, active = server.rss_kb(), server.fds(), server.active_sessions()
            samples.append((t, rss, fds, active, scenario))
            with load.lock:
                c = dict(load.counts)
            print("%7.0f  %-26s %9d %5d %7d %9d %9d %9d" % (t, scenario, rss, fds, active,
                                                            c["sessions"], c["delivered"],
                                                            c["hostile"]), flush=True)
            time.sleep(max(0.0, args.sample - (time.monotonic() - now)))
        load.join()
        server.api("PUT", "/api/v1/scenario", {"name": "accept-all"})
        if not wait_quiet(server, idle + 20):
            failed.append("sessions still open %d s after the load stopped" % (idle + 20))
        quiet_fds = server.fds()
    finally:
        if server.proc.poll() is None:
            server.proc.terminate()
            try:
                rc = server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                rc = "killed"
            if rc != 0:
                failed.append("exit status %r after SIGTERM" % rc)

    after = [s for s in samples if s[0] >= warmup]
    third = len(after) // 3
    if third < 2:
        print("soak: too short to judge growth (%d samples after warm-up)" % len(after))
    else:
        first, last = after[:third], after[-third:]
        rss_first, rss_last = mean([s[1] for s in first]), mean([s[1] for s in last])
        fd_first, fd_last = mean([s[2] for s in first]), mean([s[2] for s in last])
        print("soak: RSS first third %.0f kB, last third %.0f kB (%+.1f%%); fds %.1f -> %.1f; "
              "idle server fds %d at the start, %s at the end; peak RSS %d kB"
              % (rss_first, rss_last, 100.0 * (rss_last - rss_first) / rss_first, fd_first,
                 fd_last, quiet_start, quiet_fds, max(s[1] for s in samples)))
        if rss_last > rss_first * 1.10:
            failed.append("RSS grew by more than 10%% after warm-up (%.0f -> %.0f kB)"
                          % (rss_first, rss_last))
        if fd_last > fd_first + 10:
            failed.append("open descriptors grew after warm-up (%.1f -> %.1f)"
                          % (fd_first, fd_last))
    if quiet_fds is not None and quiet_fds > quiet_start + 2:
        failed.append("%d descriptors open with no session at the end, %d at the start"
                      % (quiet_fds, quiet_start))
    with load.lock:
        print("soak: client sessions %(sessions)d, messages delivered %(delivered)d, refused or "
              "cut %(refused)d, hostile probes %(hostile)d, API reads %(api)d" % load.counts)
    for f in failed:
        print("soak: FAIL: " + f)
    print("soak: %s" % ("FAIL" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
