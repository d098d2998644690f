"""The benchmark scripts of bench/, at a hundredth of their size: they run, measure smtpfault and
Postfix's smtp-sink on every workload they document, and write their tables. The numbers of such
a small run mean nothing (bench/RESULTS.md holds real runs); what is checked is that the scripts
still work against the current binary."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from smtpfault_server import SmtpfaultServer, binary_path

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVERS = ["smtp-sink", "smtpfault", "smtpfault + Lua"]


def table_rows(text):
    """The cells of each markdown table row that is not a header or a rule."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] not in ("workload", "server"):
                rows.append(cells)
    return rows


def script_environment():
    """The scripts start `smtpfault serve`, which refuses SMTPFAULT_* variables it does not know
    (such as the test's own SMTPFAULT_BIN): they get the binary as BIN, as a user passes it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPFAULT_")}
    env["BIN"] = binary_path()
    return env


def postfix_tool(name):
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


class EveryCommandScenario(unittest.TestCase):
    """The benchmark's Lua scenario decides on every command (it is not an empty hook): it
    answers VRFY itself and refuses one recipient, and lets the rest through."""

    def test_it_answers_vrfy_and_refuses_a_recipient(self):
        with SmtpfaultServer("--scenario", os.path.join(ROOT, "bench", "every-command.lua")) as srv:
            with srv.connect() as c:
                c.ehlo()
                r = c.cmd("VRFY postmaster")   # the server's own 252 reads otherwise
                self.assertEqual((r.code, r.lines), (252, ["2.1.5 Cannot verify, will accept"]))
                c.cmd("MAIL FROM:<a@example.com>", expect=250)
                self.assertEqual(c.cmd("RCPT TO:<reject-me@example.com>").code, 550)
                c.cmd("RCPT TO:<b@example.com>", expect=250)


# `make test` installs Postfix's tools, except where Postfix would replace another mail server.
@unittest.skipUnless(postfix_tool("smtp-sink") and postfix_tool("smtp-source"),
                     "Postfix's smtp-sink and smtp-source are not installed")
class BenchScripts(unittest.TestCase):
    def run_script(self, *args, timeout=100, binary=None):
        tmp = tempfile.mkdtemp(prefix="bench-")
        results = os.path.join(tmp, "RESULTS.md")
        with open(results, "w") as f:
            f.write("# Benchmark results\n")
        env = dict(script_environment(), BENCH_SCALE="0.01", BENCH_RESULTS=results)
        if binary:
            env["BIN"] = binary
        r = subprocess.run(["bench/run.sh", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(results) as f:
            written = f.read()
        self.progress = r.stderr
        return r.stdout, written

    def test_run_compares_both_servers_on_the_five_workloads_and_appends_the_table(self):
        out, written = self.run_script("1")
        rows = table_rows(out)
        throughput = [r for r in rows if "smtp-source" in r[0]]
        workloads = sorted({r[0] for r in throughput})
        self.assertEqual(len(workloads), 5, out)
        # A hundredth of each workload's messages (10 at least), as the table says.
        for count in ("-m 10 ", "-m 100 ", "-m 200 ", "-m 50 "):
            self.assertTrue(any(count in w for w in workloads), (count, workloads))
        for w in workloads:
            by_server = {r[1]: r for r in throughput if r[0] == w}
            self.assertEqual(sorted(by_server), sorted(SERVERS), out)
            self.assertEqual(by_server["smtp-sink"][3], "1.00x", out)
            for r in by_server.values():
                self.assertGreater(float(r[2]), 0, r)            # msg/s
                self.assertRegex(r[3], r"^\d+\.\d\dx$")           # ratio to smtp-sink
                float(r[4])                                      # CPU ms/msg (10 ms ticks)
                self.assertRegex(r[7], r"^\d+\.\d\d-\d+\.\d\d$")  # paired ratios' range
        latency = {r[0]: r for r in rows if r[0] in SERVERS}
        self.assertEqual(sorted(latency), sorted(SERVERS), out)
        for r in latency.values():
            self.assertGreater(float(r[1]), 0, r)                # p50 of real transactions
            self.assertGreater(float(r[3]), 0, r)                # peak RSS
        # Appended under a dated heading that says how it was measured, the file kept.
        self.assertTrue(written.startswith("# Benchmark results\n"), written)
        self.assertRegex(written, r"\n## bench/run\.sh, \d{4}-\d\d-\d\d \d\d:\d\d UTC\n\n1 rounds")
        self.assertIn(out.strip().splitlines()[0], written)

    def test_by_default_it_takes_the_medians_of_three_rounds(self):
        out, written = self.run_script()
        self.assertRegex(written, r"\n## bench/run\.sh, [^\n]*\n\n3 rounds, medians, alternating")
        self.assertIn(out.strip().splitlines()[0], written)
        # Measured in alternation: each round of a workload takes every server in turn.
        order = {}
        for m in re.finditer(r"^(.*): round (\d) of 3, (.*)$", self.progress, re.M):
            order.setdefault(m.group(1), []).append((int(m.group(2)), m.group(3)))
        self.assertEqual(len(order), 5, self.progress)
        for workload, steps in order.items():
            self.assertEqual(steps, [(i, s) for i in (1, 2, 3) for s in SERVERS], workload)

    def test_each_measurement_gets_a_server_process_of_its_own(self):
        # Where the kernel puts a server tends to stay put for minutes: a server kept for the
        # whole run would give every round the placement of the first.
        tmp = tempfile.mkdtemp(prefix="bench-bin-")
        starts = os.path.join(tmp, "starts")
        wrapper = os.path.join(tmp, "smtpfault")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\necho $$ >> "%s"\nexec "%s" "$@"\n' % (starts, binary_path()))
        os.chmod(wrapper, 0o755)
        self.run_script("2", binary=wrapper)
        with open(starts) as f:
            pids = f.read().split()
        # Two smtpfault servers for each of 5 workloads in each of 2 rounds, then the two the
        # latency samples are taken from.
        self.assertEqual(len(pids), 2 * 5 * 2 + 2, pids)
        self.assertEqual(len(set(pids)), len(pids), pids)

    def test_installing_the_tools_leaves_no_postfix_daemon_running(self):
        # bench/install-deps.sh (run again here) must not start Postfix's master on the machine.
        r = subprocess.run(["bench/install-deps.sh"], cwd=ROOT, env=script_environment(),
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        daemons = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
            except OSError:
                continue   # gone meanwhile
            if argv0.endswith(b"postfix/sbin/master") or argv0.endswith(b"postfix/master"):
                daemons.append(pid)
        self.assertEqual(daemons, [], "a Postfix master is running")

    @unittest.skipIf(len(os.sched_getaffinity(0)) < 2, "placement pins to two CPUs")
    def test_placement_pins_each_server_next_to_the_client_and_away_from_it(self):
        out, written = self.run_script("placement", "1")
        rows = table_rows(out)
        self.assertEqual(len(rows), 2 * 2 * 3, out)
        self.assertEqual({r[1] for r in rows}, {"same CPU", "other CPU"}, out)
        self.assertEqual({r[2] for r in rows}, set(SERVERS), out)
        for r in rows:
            self.assertGreater(float(r[3]), 0, r)
        self.assertIn("## bench/run.sh placement, ", written)

    def test_idle_holds_sessions_and_reports_memory_per_session(self):
        r = subprocess.run(["bench/idle.sh", "300"], cwd=ROOT, capture_output=True, text=True,
                           env=script_environment(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"^300 idle sessions: .*: (-?[\d.]+) KiB per session; a new client's "
                      r"greeting took ([\d.]+) ms \(220\)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        self.assertIn("target <= 8 KiB per session:", r.stdout)

    def test_startup_reports_the_median_of_twenty_starts(self):
        r = subprocess.run(["bench/startup.sh", binary_path()], cwd=ROOT, capture_output=True,
                           text=True, env=script_environment(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"startup to first greeting: median [\d.]+ ms, min [\d.]+ ms, "
                                   r"max [\d.]+ ms \(20 runs\)")


if __name__ == "__main__":
    unittest.main()
