"""Side-by-side benchmark of smtpfault and Postfix's smtp-sink, both driven by smtp-source.

Each workload runs against every server in turn (A B C A B C ...) for the given number of
rounds, each run against a server process started for it; the table reports medians. Ratios
are what count: the machines are shared and noisy.
"""

import datetime
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_SCALE=0.01 runs every workload with a hundredth of its messages: a quick check that the
# scripts work, whose numbers mean nothing. BENCH_RESULTS=FILE appends there instead of to
# bench/RESULTS.md.
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
RESULTS = os.environ.get("BENCH_RESULTS", os.path.join(ROOT, "bench", "RESULTS.md"))


def workload(name, flags, messages, size):
    """(name, smtp-source arguments, message count), the count scaled by BENCH_SCALE."""
    count = max(10, int(messages * SCALE))
    return (name, [*flags, "-m", str(count), "-l", str(size)], count)


WORKLOADS = [
    workload("1 session, connection per message", ["-s", "1"], 1000, 1024),
    # 1 and 50 sessions, each with and without connection reuse.
    workload("1 session, reused connection", ["-d", "-s", "1"], 10000, 1024),
    workload("50 sessions, connection per message", ["-s", "50"], 20000, 1024),
    workload("50 sessions, reused connections", ["-d", "-s", "50"], 20000, 1024),
    workload("50 sessions, 100 KB messages", ["-s", "50"], 5000, 102400),
]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_ports(n):
    """n different free loopback ports. Bound at the same time: one bound and let go after the
    other could be handed out again, and a server given one port twice refuses to start."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


def wait_listening(port, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                if c.recv(64).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.01)
    raise SystemExit("server on port %d did not start" % port)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime + stime


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, name, argv_for_port, prefix=(), env=None):
        self.name = name
        self.port = free_port()
        self.argv = [*prefix, *argv_for_port(self.port)]
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=self.errors, start_new_session=True,
                                     env=None if env is None else dict(os.environ, **env))
        try:
            wait_listening(self.port)
        except SystemExit as e:
            self.stop()
            self.errors.seek(0)
            said = self.errors.read().decode(errors="replace").strip()
            raise SystemExit("%s: %s%s" % (name, e, "; it said: " + said if said else ""))
        except BaseException:
            # Ctrl-C while it starts: it runs in a session of its own, so no one else stops it.
            self.stop()
            raise

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.errors.close()


def start_servers(specs):
    """Servers from (name, argv_for_port, prefix, env) in order; if one does not start, the ones
    started before it are stopped before the error goes on."""
    started = []
    try:
        for spec in specs:
            started.append(Server(*spec))
    except BaseException:
        for srv in started:
            srv.stop()
        raise
    return started


def smtpfault(binary, scenario=None):
    def argv(port):
        # Not the SMTP port either: it was let go for the server to bind.
        tls_port, api_port = [p for p in free_ports(3) if p != port][:2]
        a = [binary, "serve", "--listen", "127.0.0.1:%d" % port,
             "--tls-listen", "127.0.0.1:%d" % tls_port, "--api", "127.0.0.1:%d" % api_port,
             "--log-format", "none", "--max-connections", "10000"]
        return a + (["--scenario", scenario] if scenario else [])
    return argv


def postfix_tool(name):
    """smtp-sink and smtp-source live in /usr/sbin, which is not on every user's PATH."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin") or name


def smtp_sink(port):
    # As root it must be told whom to become; as anyone else it stays who it is.
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    return [postfix_tool("smtp-sink"), *user, "127.0.0.1:%d" % port, "1000"]


def children_cpu_seconds():
    """CPU of finished, waited-for children: smtp-source (the servers are still running)."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def run_source(server, args, prefix=()):
    """Returns (elapsed s, server CPU s, smtp-source CPU s). prefix runs smtp-source under
    another command (taskset)."""
    before, source_before = cpu_seconds(server.proc.pid), children_cpu_seconds()
    start = time.perf_counter()
    r = subprocess.run([*prefix, postfix_tool("smtp-source"), *args, "127.0.0.1:%d" % server.port],
                       capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit("smtp-source against %s failed: %s" % (server.name, r.stderr.strip()))
    return elapsed, cpu_seconds(server.proc.pid) - before, children_cpu_seconds() - source_before


def latencies(servers, n=2000, chunk=50):
    """Full transaction (connect, EHLO, MAIL, RCPT, DATA, QUIT) at one session, in ms: p50 and
    p99 of n samples per server. 2,000 samples: the p99 of a few hundred is just the worst
    handful on a shared machine. Taken in alternation, a chunk per server in turn, so a noisy
    minute on the machine lands on every server alike rather than on whichever ran then."""
    import smtplib
    times = {srv.name: [] for srv in servers}
    body = b"Subject: latency\r\n\r\n" + b"x" * 900 + b"\r\n"
    for _ in range(n // chunk):
        for srv in servers:
            for _ in range(chunk):
                t = time.perf_counter()
                s = smtplib.SMTP("127.0.0.1", srv.port)
                s.sendmail("a@example.com", ["b@example.com"], body)
                s.quit()
                times[srv.name].append((time.perf_counter() - t) * 1000)
    result = {}
    for name, samples in times.items():
        samples.sort()
        result[name] = (samples[len(samples) // 2], samples[int(len(samples) * 0.99)])
    return result


def main():
    binary, rounds = sys.argv[1], int(sys.argv[2])
    every = os.path.join(ROOT, "bench", "every-command.lua")
    specs = [("smtp-sink", smtp_sink),
             ("smtpfault", smtpfault(binary)),
             ("smtpfault + Lua", smtpfault(binary, every))]
    results = {}   # (workload, server) -> [(msg/s, cpu ms per msg)]
    rss = {name: 0 for name, _ in specs}
    # Every measurement gets a server process of its own. Where the kernel puts a server next to
    # its client tends to stay as it is for minutes, so servers kept for the whole run would
    # carry one placement through every round, and the rounds would not sample it afresh.
    for wname, args, count in WORKLOADS:
        for i in range(rounds):
            for spec in specs:
                # Progress, and the order of the measurements for whoever doubts it.
                print("%s: round %d of %d, %s" % (wname, i + 1, rounds, spec[0]),
                      file=sys.stderr, flush=True)
                srv = start_servers([spec])[0]
                try:
                    elapsed, cpu, source_cpu = run_source(srv, args)
                    rss[srv.name] = max(rss[srv.name], peak_rss_kib(srv.proc.pid))
                finally:
                    srv.stop()
                results.setdefault((wname, srv.name), []).append(
                    (count / elapsed, cpu * 1000 / count, 100 * source_cpu / elapsed))
    servers = start_servers(specs)
    try:
        lat = latencies(servers, n=max(50, int(2000 * SCALE)))
        for srv in servers:
            rss[srv.name] = max(rss[srv.name], peak_rss_kib(srv.proc.pid))
    finally:
        for srv in servers:
            srv.stop()
    report(results, lat, rss, servers, binary, rounds)


def report(results, lat, rss, servers, binary, rounds):
    lines = []
    # smtp-source is one process: near 100% of a core it is the bottleneck, not the server.
    # The last column pairs each round's run with smtp-sink's run of the same round (moments
    # apart), so it shows how far the machine's drift moves a ratio within one table.
    head = ("| workload | server | msg/s | ratio to smtp-sink | CPU ms/msg | CPU ratio "
            "| smtp-source CPU % | ratio per round, lowest-highest |")
    lines += [head, "|---|---|---:|---:|---:|---:|---:|---:|"]
    for wname, args, _ in WORKLOADS:
        base = statistics.median(r[0] for r in results[(wname, "smtp-sink")])
        base_cpu = statistics.median(r[1] for r in results[(wname, "smtp-sink")])
        for srv in servers:
            rate = statistics.median(r[0] for r in results[(wname, srv.name)])
            cpu = statistics.median(r[1] for r in results[(wname, srv.name)])
            source = statistics.median(r[2] for r in results[(wname, srv.name)])
            paired = [mine[0] / sink[0] for mine, sink in
                      zip(results[(wname, srv.name)], results[(wname, "smtp-sink")])]
            lines.append("| %s (`smtp-source %s`) | %s | %.0f | %.2fx | %.3f | %.2fx | %.0f "
                         "| %.2f-%.2f |" % (
                             wname, " ".join(args), srv.name, rate, rate / base, cpu,
                             cpu / base_cpu if base_cpu else 0, source, min(paired), max(paired)))
    lines += ["", "| server | latency p50 ms | latency p99 ms | peak RSS MiB |", "|---|---:|---:|---:|"]
    for srv in servers:
        p50, p99 = lat[srv.name]
        lines.append("| %s | %.2f | %.2f | %.1f |" % (srv.name, p50, p99, rss[srv.name] / 1024))
    publish("bench/run.sh", "%d rounds, medians, alternating servers, a new server process for each "
            "measurement; binary %s; %d CPUs. "
            "smtpfault runs with `--log-format none` and %s; \"+ Lua\" adds "
            "`--scenario bench/every-command.lua` (a hook on every command)."
            % (rounds, binary, os.cpu_count(), threads_setting()), lines)


def publish(title, how, lines):
    """Prints the table and appends it to bench/RESULTS.md (or BENCH_RESULTS) under "## title,
    date", with how it was measured."""
    table = "\n".join(lines)
    print(table)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(RESULTS, "a") as f:
        f.write("\n## %s, %s\n\n%s\n\n%s\n" % (title, stamp, how, table))


def threads_setting():
    t = os.environ.get("SMTPFAULT_THREADS")
    return "`SMTPFAULT_THREADS=%s`" % t if t else "its default threads (one per two cores)"


if __name__ == "__main__":
    main()
