"""The built-in catalogue (scenarios/server) under `smtpfault test` with the reference mailers.

- careful.py passes every scenario (the expectations describe a careful mailer);
- naive.py fails the ones that target its bugs, with reasons a user can act on;
- the JUnit report validates against the Jenkins/Ant JUnit schema (fixtures/junit/junit.xsd);
- a hanging command is killed with its whole process group at --timeout;
- a hook that fails while the mailer runs is the scenario's error (ERROR, exit 2), not the mailer's,
  and so is a command that cannot be run;
- a mailer that sends to one recipient is judged by what it asked for (greylist passes);
- docs/catalogue.md shows each scenario's own expectations;
- --jobs 4 gives the same verdicts as a serial run;
- `smtpfault list` shows every scenario with its description, `smtpfault check` accepts each.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from smtpfault_server import binary_path, server_environment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCENARIOS = os.path.join(ROOT, "scenarios", "server")
PYTHON = "/usr/bin/python3"
CAREFUL = os.path.join(ROOT, "examples", "mailers", "careful.py")
NAIVE = os.path.join(ROOT, "examples", "mailers", "naive.py")
TIME_SCALE = "0.02"
SEED = "4242"
# The start of a Python mailer given as code: an smtplib session on the scenario's server, as s.
CONNECTED = ("import os, smtplib\n"
             "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n")

CATALOGUE = [
    "accept-all", "magic-addresses", "greeting-421", "greeting-554", "greeting-521",
    "greeting-slow", "greeting-multiline", "reply-code-matrix", "ehlo-unsupported",
    "starttls-stripped", "starttls-454", "starttls-handshake-fail", "starttls-bad-cert",
    "starttls-injection", "auth-535", "auth-454", "auth-538", "auth-mech-fallback",
    "relay-denied", "partial-recipients", "all-recipients-rejected", "too-many-recipients",
    "greylist", "size-limit", "no-8bitmime", "no-smtputf8", "slow-final-reply",
    "drop-after-dot", "drop-mid-data", "data-421", "line-too-long", "pipelining-failure",
    "session-message-cap", "idle-421", "quit-variants", "connection-limit",
    "multiline-replies", "malformed-replies",
]


def read_text(path):
    """The file's text, or "" while it does not exist yet."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def run_test(args, timeout=170, stdin=None):
    """Runs `smtpfault test ARGS` (stdin: a file object or None); returns (exit status, stdout,
    stderr)."""
    p = subprocess.run([binary_path(), "test"] + args, env=server_environment(), cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout, stdin=stdin)
    return p.returncode, p.stdout, p.stderr


def verdicts(json_path):
    """{scenario name: result} from a JSON report (names without directory and .lua)."""
    with open(json_path, encoding="utf-8") as f:
        doc = json.load(f)
    out = {}
    for r in doc["results"]:
        name = os.path.basename(r["scenario"])
        out[name[:-4] if name.endswith(".lua") else name] = r
    return out


def judge_mailer(test, scenario, mailer, *extra):
    """Runs `smtpfault test --scenario SCENARIO` on a Python mailer given as code; returns (exit
    status, the scenario's result, output)."""
    tmp = tempfile.mkdtemp(prefix="catalogue-mailer-")
    test.addCleanup(shutil.rmtree, tmp, True)
    json_path = os.path.join(tmp, "report.json")
    status, out, err = run_test(["--scenario", scenario, *extra, "--json", json_path, "--",
                                 PYTHON, "-c", mailer], timeout=120)
    return status, verdicts(json_path)[scenario], out + err

class CatalogueFiles(unittest.TestCase):
    def test_catalogue_is_complete(self):
        files = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(SCENARIOS, "*.lua")))
        self.assertEqual(files, sorted(CATALOGUE))

    def test_headers(self):
        for name in CATALOGUE:
            with open(os.path.join(SCENARIOS, name + ".lua"), encoding="utf-8") as f:
                text = f.read()
            first = text.splitlines()[0]
            self.assertTrue(first.startswith("-- %s: " % name), "%s: first line %r" % (name, first))
            self.assertIn("What it targets", text, name)
            self.assertIn("What a correct mailer does", text, name)
            self.assertIn("expect", text, name)

    def test_the_docs_table_shows_each_scenarios_own_expectations(self):
        # docs/catalogue.md's last column against the expect { } block of each file: its
        # top-level "key = value" lines, and "custom check" for a check function.
        with open(os.path.join(ROOT, "docs", "catalogue.md"), encoding="utf-8") as f:
            rows = {}
            for line in f:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) == 5 and cells[0].startswith("`") and cells[0].strip("`") in CATALOGUE:
                    rows[cells[0].strip("`")] = cells
        self.assertEqual(sorted(rows), sorted(CATALOGUE))
        for name in CATALOGUE:
            with open(os.path.join(SCENARIOS, name + ".lua"), encoding="utf-8") as f:
                text = f.read()
            items = []   # from every expect block of the file
            for one_line in re.finditer(r"^expect \{ (.*) \}$", text, re.M):
                items += [i.split(" = ", 1) for i in one_line.group(1).split(", ")]
            for start in re.finditer(r"^expect \{$", text, re.M):
                block = text[start.end():]
                block = block[:block.index("\n}")]
                items += [m.groups() for m in re.finditer(r"^  (\w+) = (.*?),?$", block, re.M)]
            expected = {"custom check" if k == "check" else "%s = %s" % (k, v) for k, v in items}
            documented = {item.strip().strip("`") for item in rows[name][4].split("`, `")}
            self.assertEqual(documented, expected, name)
            self.assertTrue(rows[name][3], name + ": the 'a correct mailer' cell is empty")

    def test_list_shows_every_scenario_with_a_description(self):
        p = subprocess.run([binary_path(), "list"], env=server_environment(), capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = {}
        for line in p.stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                listed[parts[0]] = parts[1]
        for name in CATALOGUE:
            self.assertIn(name, listed, "smtpfault list lacks " + name)
            self.assertGreater(len(listed[name]), 15, name)

    def test_check_accepts_every_file(self):
        for path in sorted(glob.glob(os.path.join(SCENARIOS, "*.lua"))):
            p = subprocess.run([binary_path(), "check", path], env=server_environment(),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, "%s: %s%s" % (path, p.stdout, p.stderr))

    def test_check_takes_a_folder_of_scenarios(self):
        p = subprocess.run([binary_path(), "check", SCENARIOS], env=server_environment(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), len(CATALOGUE), p.stdout)
        tmp = tempfile.mkdtemp(prefix="check-folder-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name, text in (("a.lua", "local x = 1\n"), ("b.lua", "local = 2\n"),
                           ("notes.txt", "not a scenario\n")):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        p = subprocess.run([binary_path(), "check", tmp], env=server_environment(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "ok  %s\n" % os.path.join(tmp, "a.lua"))
        self.assertIn(os.path.join(tmp, "b.lua") + ":1:", p.stderr)
        os.mkdir(os.path.join(tmp, "empty"))
        p = subprocess.run([binary_path(), "check", os.path.join(tmp, "empty")],
                           env=server_environment(), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no .lua files there", p.stderr)
        # A folder of folders, as the repository's scenarios/: the ones with scenarios are named.
        inner = os.path.join(tmp, "holder", "server")
        os.makedirs(inner)
        with open(os.path.join(inner, "x.lua"), "w") as f:
            f.write("local x = 1\n")
        p = subprocess.run([binary_path(), "check", os.path.join(tmp, "holder")],
                           env=server_environment(), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no .lua files there (only the folder itself is read, not its subfolders; "
                      "these have some: %s)" % inner, p.stderr)


class CatalogueRuns(unittest.TestCase):
    """One careful run, serial (--jobs 1), shared by the report tests and compared with a
    parallel one."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="catalogue-")
        cls.junit = os.path.join(cls.tmp, "careful.xml")
        cls.json = os.path.join(cls.tmp, "careful.json")
        started = time.monotonic()
        cls.status, cls.out, cls.err = run_test(
            ["--scenarios", SCENARIOS, "--time-scale", TIME_SCALE, "--seed", SEED, "--jobs", "1",
             "--junit", cls.junit, "--json", cls.json, "--", PYTHON, CAREFUL])
        cls.seconds = time.monotonic() - started

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_catalogue_careful(self):
        results = verdicts(self.json)
        self.assertEqual(sorted(results), sorted(CATALOGUE))
        failed = {n: r["reason"] for n, r in results.items() if r["verdict"] != "PASS"}
        self.assertEqual(failed, {}, self.out)
        self.assertEqual(self.status, 0, self.out + self.err)
        self.assertIn("38 passed, 0 failed, 0 errors", self.out)
        self.assertLess(self.seconds, 100)
        # Seconds as people write them ("0.31"), not Boost's "3.1E-1".
        with open(self.json) as f:
            text = f.read()
        self.assertRegex(text, r'"seconds":[0-9]+\.[0-9]+,')
        self.assertNotRegex(text, r'"seconds":[0-9.]+E')

    def test_junit_report_matches_the_schema(self):
        xmllint = shutil.which("xmllint")
        if not xmllint:
            self.skipTest("xmllint is not installed (Debian package libxml2-utils)")
        xsd = os.path.join(ROOT, "fixtures", "junit", "junit.xsd")
        p = subprocess.run([xmllint, "--noout", "--schema", xsd, self.junit],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("validates", p.stderr)
        # The seed, to replay a failure seen in CI.
        import xml.etree.ElementTree as ET
        suite = ET.parse(self.junit).getroot().find("testsuite")
        self.assertEqual([(x.get("name"), x.get("value"))
                          for x in suite.find("properties").findall("property")],
                         [("seed", SEED)])

    def test_catalogue_naive(self):
        json_path = os.path.join(self.tmp, "naive.json")
        status, out, err = run_test(
            ["--scenarios", SCENARIOS, "--time-scale", TIME_SCALE, "--seed", SEED, "--jobs", "2",
             "--json", json_path, "--", PYTHON, NAIVE])
        self.assertEqual(status, 1, out + err)
        results = verdicts(json_path)
        # scenario -> words the reason must contain
        must_fail = {
            "starttls-stripped": ["no_plaintext_auth", "AUTH over plaintext"],
            "starttls-bad-cert": ["accepted a bad certificate", "expired"],
            "greylist": ["retried_after_4xx", "451 4.7.1 Greylisted", "never came back"],
            "partial-recipients": ["accepted recipients", "550 5.1.1", "sent no DATA"],
            "data-421": ["retried_after_4xx", "421 4.3.0", "never came back"],
            "starttls-454": ["AUTH over plaintext"],
            "line-too-long": ["line_length", "lines over the limit"],
        }
        for name, words in must_fail.items():
            r = results[name]
            self.assertEqual(r["verdict"], "FAIL", "%s: %s" % (name, r["reason"]))
            for w in words:
                self.assertIn(w, r["reason"], name)
            self.assertIn(r["reason"], out)   # the table shows the same reason
        # the detailed checks name the slips the server saw in naive's message
        line_checks = {c["name"]: c for c in results["line-too-long"]["checks"]}
        self.assertFalse(line_checks["dot_stuffing"]["passed"])
        self.assertIn("unstuffed leading dots", line_checks["dot_stuffing"]["detail"])
        self.assertFalse(line_checks["line_length"]["passed"])
        for name in ("dot_stuffing", "line_length"):
            self.assertRegex(line_checks[name]["detail"], r"the first at transcript line [1-9]")

    def test_parallel_runs_give_the_serial_verdicts(self):
        parallel = os.path.join(self.tmp, "jobs4.json")
        status, out, err = run_test(["--scenarios", SCENARIOS, "--time-scale", TIME_SCALE,
                                     "--seed", SEED, "--jobs", "4", "--json", parallel, "--",
                                     PYTHON, CAREFUL])
        self.assertEqual(status, 0, out + err)
        serial = {n: r["verdict"] for n, r in verdicts(self.json).items()}
        self.assertEqual(len(serial), len(CATALOGUE))
        self.assertEqual(serial, {n: r["verdict"] for n, r in verdicts(parallel).items()})


class StandardInputForEveryScenario(unittest.TestCase):
    """Every scenario's command reads the same standard input from its start, as a mailer fed
    with `< mail.eml` or through a pipe expects; with --jobs too."""
    SCENARIOS = ["--scenario", "accept-all", "--scenario", "no-8bitmime", "--scenario",
                 "greeting-554"]

    def outputs(self, stdin, *flags):
        tmp = tempfile.mkdtemp(prefix="catalogue-stdin-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(self.SCENARIOS + [*flags, "--json", json_path, "--", "sh",
                                    "-c", "printf 'read: '; cat"], stdin=stdin, timeout=60)
        self.assertEqual(status, 1, out + err)   # the command sends no mail: each one fails
        with open(json_path, encoding="utf-8") as f:
            return [r["command_output"] for r in json.load(f)["results"]], err

    def test_a_file_is_read_from_its_start_by_each(self):
        with tempfile.TemporaryFile() as f:
            f.write(b"Subject: same for all\n")
            f.seek(0)
            got, _ = self.outputs(f)
        self.assertEqual(got, ["read: Subject: same for all\n"] * 3)

    def test_a_pipe_is_copied_for_each_also_in_parallel(self):
        r, w = os.pipe()
        os.write(w, b"piped line\n")
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            got, _ = self.outputs(pipe, "--jobs", "3")
        self.assertEqual(got, ["read: piped line\n"] * 3)

    def test_a_pipe_that_pauses_is_waited_for_and_one_without_end_is_refused(self):
        # Sent something, then paused: waited for, with a note (a producer still at work).
        feeder = subprocess.Popen(["sh", "-c", "echo late; sleep 4; echo later"],
                                  stdout=subprocess.PIPE)
        self.addCleanup(feeder.wait)
        got, err = self.outputs(feeder.stdout)
        feeder.stdout.close()
        self.assertEqual(got, ["read: late\nlater\n"] * 3)
        self.assertIn("waiting for standard input to end: every scenario's command gets all "
                      "of it", err)
        # One that goes on and on is refused, not held in memory without bound.
        p = subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--", "true"],
                           env=server_environment(), cwd=ROOT, capture_output=True, timeout=60,
                           input=b"y\n" * (33 * 1024 * 1024))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"standard input goes on past 64 MiB", p.stderr)

    def test_a_pipe_that_neither_sends_nor_ends_counts_as_empty(self):
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        with os.fdopen(r, "rb") as pipe:
            got, err = self.outputs(pipe)
        self.assertEqual(got, ["read: "] * 3)
        self.assertIn("standard input is a pipe that neither sent nor ended in 3 s: the "
                      "commands get none, as with </dev/null", err)


class CommandsHoldNoDescriptorOfTheRunner(unittest.TestCase):
    def test_only_stdin_stdout_and_stderr_are_open_in_the_command(self):
        # A command holding a copy of a server's socket (another scenario's connection, with
        # --jobs) would keep it open after that server closed it.
        tmp = tempfile.mkdtemp(prefix="catalogue-fds-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        run_test(["--scenario", "accept-all", "--scenario", "greeting-554", "--jobs", "2",
                  "--json", json_path, "--", "sh", "-c", "ls /proc/$$/fd"], timeout=60)
        with open(json_path, encoding="utf-8") as f:
            outputs = [r["command_output"] for r in json.load(f)["results"]]
        self.assertEqual(outputs, ["0\n1\n2\n"] * 2)


class AddressVariablesAreTheRunners(unittest.TestCase):
    def test_listen_and_api_variables_are_not_read(self):
        # Where each scenario's server listens is the runner's choice: a value meant for
        # something else is no mistake, and the command still gets the runner's own.
        env = server_environment({"SMTPFAULT_API": "http://127.0.0.1:8025",
                                  "SMTPFAULT_LISTEN": "nonsense"})
        p = subprocess.run([binary_path(), "test", "--scenario", "accept-all", "--", "sh", "-c",
                            'echo "api=$SMTPFAULT_API"'], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)   # it sent no mail: a FAIL
        self.assertRegex(p.stdout, r"api=127\.0\.0\.1:\d+")


class HangingCommand(unittest.TestCase):
    def killed_during_slow_final_reply(self, *flags):
        """slow-final-reply (the reply to the data held 75 s) with a patient swaks, killed by a
        2 s --timeout: the scenario's JSON result."""
        tmp = tempfile.mkdtemp(prefix="catalogue-held-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(
            ["--scenario", "slow-final-reply", "--timeout", "2", *flags, "--json", json_path,
             "--", "sh", "-c",
             'swaks --server "$SMTP_SERVER" --to a@x.test --timeout 300 >/dev/null'],
            timeout=60)
        self.assertEqual(status, 1, out + err)
        return verdicts(json_path)["slow-final-reply"]

    def test_a_timeout_during_a_hang_says_no_reply_comes_not_to_shrink_delays(self):
        tmp = tempfile.mkdtemp(prefix="catalogue-hang-")
        self.addCleanup(shutil.rmtree, tmp, True)
        scenario, json_path = os.path.join(tmp, "hang.lua"), os.path.join(tmp, "report.json")
        with open(scenario, "w") as f:
            f.write("function on_rcpt(s, rcpt) return smtp.hang() end\n")
        status, out, err = run_test(
            ["--scenario", scenario, "--timeout", "2", "--json", json_path, "--", "sh", "-c",
             'swaks --server "$SMTP_SERVER" --to a@x.test --timeout 300 >/dev/null'], timeout=60)
        self.assertEqual(status, 1, out + err)
        reason = verdicts(json_path)["hang"]["reason"]
        self.assertIn("it was waiting for the reply to 'RCPT TO:<a@x.test>' (session 000001), "
                      "which the scenario never sends (it hangs): the mailer must give up by "
                      "itself before --timeout", reason)
        self.assertNotIn("--time-scale", reason)

    def test_a_timeout_while_the_scenario_holds_a_reply_says_so(self):
        # Killed at 2 s, the mailer was waiting for the server, and the reason says how to give
        # it the time.
        result = self.killed_during_slow_final_reply()
        reason = result["reason"]
        self.assertIn("timeout: the command was killed after 2 s; it was waiting for the reply "
                      "to '<end of data>' (session 000001)", reason)
        self.assertIn("--time-scale", reason)
        # Stored, but its 250 never left: not delivered as the client knows it.
        checks = {c["name"]: c for c in result["checks"]}
        self.assertFalse(checks["delivered"]["passed"], checks["delivered"])
        self.assertIn("got 0", checks["delivered"]["detail"])

    def test_a_held_reply_is_named_whatever_the_time_scale(self):
        # Scaled to 7.5 s, the 75 s delay still outlasts a 2 s --timeout: the reason must say
        # that the scenario held the reply, not only blame the mailer.
        reason = self.killed_during_slow_final_reply("--time-scale", "0.1")["reason"]
        self.assertIn("which the scenario was holding back: give --timeout more than its delay "
                      "(scaled by --time-scale 0.1)", reason)

    def test_the_session_named_is_the_killed_run_s(self):
        # quit-variants runs the command three times; the 2nd QUIT is never answered, and a
        # client without a timeout of its own is killed there (smtplib sends it as 'quit').
        # The 3rd run's QUIT also gets no reply (the server closes), but nothing waited on it.
        tmp = tempfile.mkdtemp(prefix="catalogue-killed-run-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        client = ("import os, smtplib\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s.sendmail('a@x.test', ['b@x.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "try:\n    s.quit()\nexcept Exception:\n    pass\n")
        status, out, err = run_test(
            ["--scenario", "quit-variants", "--time-scale", "0.02", "--timeout", "3",
             "--json", json_path, "--", PYTHON, "-c", client], timeout=90)
        self.assertEqual(status, 1, out + err)
        r = verdicts(json_path)["quit-variants"]
        self.assertEqual(r["exit_codes"][1], -1, r)
        self.assertIn("it was waiting for the reply to 'quit' (session 000002)", r["reason"])

    def test_timeout_kills_the_process_group(self):
        tmp = tempfile.mkdtemp(prefix="catalogue-timeout-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pidfile = os.path.join(tmp, "child.pid")
        json_path = os.path.join(tmp, "report.json")
        script = "sleep 30 & echo $! > %s; sleep 30" % pidfile
        started = time.monotonic()
        status, out, err = run_test(["--scenario", "accept-all", "--timeout", "1", "--json",
                                     json_path, "--", "sh", "-c", script], timeout=60)
        elapsed = time.monotonic() - started
        self.assertEqual(status, 1, out + err)
        self.assertLess(elapsed, 15)
        with open(pidfile) as f:
            child = int(f.read().strip())
        deadline = time.monotonic() + 5
        while os.path.exists("/proc/%d" % child) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = os.path.exists("/proc/%d" % child)
        if alive:
            with open("/proc/%d/stat" % child) as f:
                alive = f.read().split(") ")[1].split()[0] != "Z"   # a zombie is dead
        self.assertFalse(alive, "the background child %d outlived the timeout" % child)
        r = verdicts(json_path)["accept-all"]
        self.assertEqual(r["verdict"], "FAIL")
        self.assertIn("timeout", r["reason"])
        self.assertEqual(r["exit_codes"], [-1])
        table_line = [l for l in out.splitlines() if l.startswith("accept-all")][0]
        self.assertIn("timeout", table_line)

    def test_a_scenario_given_twice_is_one_junit_case(self):
        tmp = tempfile.mkdtemp(prefix="catalogue-twice-")
        self.addCleanup(shutil.rmtree, tmp, True)
        junit = os.path.join(tmp, "twice.xml")
        status, out, err = run_test(["--scenario", "accept-all", "--scenario", "accept-all",
                                     "--junit", junit, "--", "sh", "-c",
                                     'swaks --server "$SMTP_SERVER" --to a@x.test >/dev/null'],
                                    timeout=60)
        self.assertEqual(status, 0, out + err)
        import xml.etree.ElementTree as ET
        names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
        self.assertEqual(names, ["accept-all"])

    def accept_all_with(self, mailer, *flags):
        """`test --scenario accept-all` with a Python mailer given as text: (status, the
        scenario's JSON result, output)."""
        tmp = tempfile.mkdtemp(prefix="catalogue-mailer-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", "accept-all", *flags, "--json", json_path,
                                     "--", PYTHON, "-c", mailer], timeout=60)
        return status, verdicts(json_path)["accept-all"], out + err

    def test_a_killed_mailer_is_not_credited_with_a_quit(self):
        # Its connection ends when it dies; the run must see that end, not stop the server
        # first and count the shutdown's 421 as the server ending the session.
        hang = ("import os, socket, time\n"
                "env = os.environ\n"
                "s = socket.create_connection((env['SMTP_HOST'], int(env['SMTP_PORT'])))\n"
                "s.recv(1000)\ntime.sleep(30)\n")
        status, r, output = self.accept_all_with(hang, "--timeout", "1")
        self.assertEqual(status, 1, output)
        checks = {c["name"]: c for c in r["checks"]}
        self.assertFalse(checks["quit"]["passed"], checks["quit"])
        self.assertIn("closed after the greeting (220) without QUIT", checks["quit"]["detail"])

    def test_a_crash_is_the_headline_and_exit_is_not_the_reason_given(self):
        crash = ("import os, signal, smtplib\n"
                 "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                 "s.ehlo()\nos.kill(os.getpid(), signal.SIGSEGV)\n")
        status, r, output = self.accept_all_with(crash)
        self.assertEqual(status, 1, output)
        self.assertTrue(r["reason"].startswith("the command was killed by signal 11"), r)
        # A mailer that delivers and then reports failure fails the baseline too.
        liar = ("import os, smtplib, sys\n"
                "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                "s.quit()\nsys.exit(1)\n")
        status, r, output = self.accept_all_with(liar)
        self.assertEqual(status, 1, output)
        self.assertIn("exit: expected exit status success, got 1", r["reason"])

    def test_the_table_shows_the_last_lines_a_failing_command_printed(self):
        # Often the cause (a refusal the mailer quoted); escape sequences are shown, not run.
        talker = ("import sys\nprint('line one')\nprint('\u00e9' * 300)\n"
                  "print('smtp: 500 5.5.2 Line too long \\x1b[31m \\x7f \\u009b', file=sys.stderr)\n"
                  "sys.exit(26)\n")
        status, r, output = self.accept_all_with(talker)
        self.assertEqual(status, 1, output)
        lines = output.splitlines()
        row = next(i for i, l in enumerate(lines) if l.startswith("accept-all  FAIL"))
        # Cut at a character boundary (200 octets of two-octet characters); C0, DEL and C1
        # controls shown as '?'.
        self.assertEqual([l.strip() for l in lines[row + 1:row + 4]],
                         ["| line one", "| " + "\u00e9" * 100 + "...",
                          "| smtp: 500 5.5.2 Line too long ?[31m ? ?"], output)
        self.assertIn("in --json or --junit", output)
        # A passing scenario shows no output.
        status, r, output = self.accept_all_with(
            "import os, smtplib\nprint('sent fine')\n"
            "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
            "s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\ns.quit()\n")
        self.assertEqual(status, 0, output)
        self.assertNotIn("sent fine", output)

    def test_a_crash_behind_a_shell_is_a_crash_too(self):
        # A wrapper script or `sh -c` reports its child's SIGSEGV as exit status 139: greeting-521
        # expects a failure, and a segfault after the 521 must not pass as one.
        crash = ("import os, signal, socket\n"
                 "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
                 "s.recv(1000)\nos.kill(os.getpid(), signal.SIGSEGV)\n")
        wrapped = ["sh", "-c", '"$0" -c "$1"; status=$?; exit $status', PYTHON, crash]
        tmp = tempfile.mkdtemp(prefix="catalogue-wrapped-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", "greeting-521", "--json", json_path, "--",
                                     *wrapped], timeout=60)
        self.assertEqual(status, 1, out + err)
        r = verdicts(json_path)["greeting-521"]
        self.assertEqual(r["verdict"], "FAIL", r)
        self.assertTrue(r["reason"].startswith("the command was killed by signal 11"), r)
        self.assertEqual(r["exit_codes"], [139], r)
        checks = {c["name"]: c for c in r["checks"]}
        self.assertIn("(a crash is not a reported failure)", checks["exit"]["detail"])
        # A deliberate status above 128 that is not a crash's (130 after SIGINT) stays a failure.
        status, out, err = run_test(["--scenario", "greeting-521", "--json", json_path, "--",
                                     "sh", "-c", '"$0" -c "$1"; exit 130', PYTHON,
                                     crash.replace("os.kill(os.getpid(), signal.SIGSEGV)",
                                                   "s.sendall(b'QUIT\\r\\n'); s.recv(1000)")],
                                    timeout=60)
        r = verdicts(json_path)["greeting-521"]
        self.assertEqual(r["verdict"], "PASS", (r, out, err))

    def test_an_interrupted_run_ends_the_command_and_all_it_started(self):
        # The command leads its own process group, out of reach of a Ctrl-C or a CI cancel.
        for sig, status in ((signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)):
            tmp = tempfile.mkdtemp(prefix="catalogue-interrupt-")
            self.addCleanup(shutil.rmtree, tmp, True)
            pidfile = os.path.join(tmp, "pids")
            # It delivers first: what it did holds up, but the run was cut short all the same.
            # Its trap shows that it got a SIGTERM, and a moment to clean up, before the SIGKILL.
            cleaned = os.path.join(tmp, "cleaned")
            script = ("swaks --server \"$SMTP_SERVER\" --to a@x.test >/dev/null; "
                      "trap 'echo yes > %s; exit 1' TERM; "
                      "sleep 30 & echo $$ $! > %s; wait $!" % (cleaned, pidfile))
            junit = os.path.join(tmp, "report.xml")
            runner = subprocess.Popen([binary_path(), "test", "--scenario", "accept-all",
                                       "--scenario", "greylist", "--junit", junit,
                                       "--timeout", "60", "--", "sh", "-c", script],
                                      env=server_environment(), cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 20
            while not read_text(pidfile).strip():
                self.assertLess(time.monotonic(), deadline, "the command never started")
                time.sleep(0.05)
            pids = [int(p) for p in read_text(pidfile).split()]
            runner.send_signal(sig)
            out, err = runner.communicate(timeout=20)
            self.assertEqual(runner.returncode, status)
            # What ran is reported, and the seed was printed before anything ran.
            name = signal.Signals(sig).name
            self.assertRegex(err.splitlines()[0], r"^smtpfault test: 2 scenario\(s\), seed \d+$")
            self.assertIn("interrupted by %s; the reports have what ran" % name, err)
            self.assertRegex(out, r"accept-all +ERROR +interrupted by %s" % name)
            self.assertRegex(out, r"greylist +ERROR +not run: interrupted by %s" % name)
            with open(junit) as f:
                report = f.read()
            self.assertIn('<error message="interrupted by %s"' % name, report)
            self.assertIn('<error message="not run: interrupted by %s"' % name, report)
            deadline = time.monotonic() + 5
            while any(alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertFalse([p for p in pids if alive(p)], "outlived the interrupted run")
            self.assertTrue(os.path.exists(cleaned), "the command's TERM trap never ran")


    def test_a_long_output_keeps_its_end(self):
        # The mailer's last words say why it failed; a cap that kept only the start lost them.
        tmp = tempfile.mkdtemp(prefix="catalogue-output-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        talker = "import sys\nsys.stdout.write('x' * 3000000 + '\\nFINAL WORDS\\n')\n"
        status, out, err = run_test(["--scenario", "accept-all", "--json", json_path, "--",
                                     PYTHON, "-c", talker], timeout=60)
        output = verdicts(json_path)["accept-all"]["command_output"]
        self.assertTrue(output.startswith("xxxx"))
        self.assertIn("bytes of output cut ...]", output)
        self.assertTrue(output.endswith("FINAL WORDS\n"), output[-100:])
        self.assertLess(len(output), 1024 * 1024 + 100)


def alive(pid):
    """Whether the process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class ScenarioErrorDuringTheRun(unittest.TestCase):
    MAILER = ("import os, smtplib\n"
              "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
              "s.sendmail('a@x.test', ['b@y.test'], b'Subject: t\\r\\n\\r\\nhi\\r\\n')\n"
              "s.quit()\n")

    def run_scenario(self, name, lua):
        """Runs a correct mailer against the scenario text; returns (its path, its result)."""
        tmp = tempfile.mkdtemp(prefix="catalogue-scenario-error-")
        self.addCleanup(shutil.rmtree, tmp, True)
        script = os.path.join(tmp, name + ".lua")
        with open(script, "w") as f:
            f.write(lua)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", script, "--json", json_path, "--",
                                     PYTHON, "-c", self.MAILER], timeout=120)
        self.assertEqual(status, 2, out + err)
        return script, verdicts(json_path)[name]

    def test_a_hook_error_is_reported_as_the_scenarios_not_the_mailers(self):
        script, r = self.run_scenario(
            "typo", "expect { delivered = 1 }\nfunction on_mail(s, m) smtp.rejct() end\n")
        self.assertEqual(r["verdict"], "ERROR", r)
        self.assertIn("scenario error: %s:2: " % script, r["reason"])
        self.assertIn("rejct", r["reason"])

    def test_a_custom_check_that_fails_to_run_is_the_scenarios_error(self):
        script, r = self.run_scenario(
            "badcheck", "expect {\n  check = function(run) return run.nope.x end,\n}\n")
        self.assertEqual(r["verdict"], "ERROR", r)
        self.assertIn("scenario error: custom check failed with an error: %s:2: " % script,
                      r["reason"])

    def test_a_check_must_return_a_boolean_not_a_reason_alone_or_nothing(self):
        # A reason returned alone would pass (a string is true); nothing would fail as "false".
        for body, said in (('return "no message"', "returned a string ('no message')"),
                           ("if run.delivered == 0 then return false end", "returned nothing"),
                           ("return nil, 'why'", "returned nil")):
            script, r = self.run_scenario(
                "checkreturn", "expect {\n  check = function(run) %s end,\n}\n" % body)
            self.assertEqual(r["verdict"], "ERROR", (body, r))
            self.assertIn("%s:2: custom check %s; it must return true, or false and a reason"
                          % (script, said), r["reason"])

    def test_several_checks_are_told_apart(self):
        tmp = tempfile.mkdtemp(prefix="catalogue-two-checks-")
        self.addCleanup(shutil.rmtree, tmp, True)
        script = os.path.join(tmp, "twochecks.lua")
        with open(script, "w") as f:
            f.write("expect { check = function(run) return true end }\n"
                    "expect { check = function(run) return false, 'second says no' end }\n")
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", script, "--json", json_path, "--",
                                     PYTHON, "-c", self.MAILER], timeout=60)
        self.assertEqual(status, 1, out + err)
        checks = verdicts(json_path)["twochecks"]["checks"]
        self.assertEqual([(c["name"], c["passed"]) for c in checks if "check" in c["name"]],
                         [("check", True), ("check 2", False)], checks)

    def test_a_scenario_given_twice_runs_once(self):
        # By name twice, and as its file: one row. A different text under another name stays.
        tmp = tempfile.mkdtemp(prefix="catalogue-twice-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", "accept-all", "--scenario", "accept-all",
                                     "--scenario", os.path.join(SCENARIOS, "accept-all.lua"),
                                     "--scenario", "greylist", "--json", json_path, "--",
                                     "/bin/true"], timeout=60)
        with open(json_path, encoding="utf-8") as f:
            rows = [r["scenario"] for r in json.load(f)["results"]]
        self.assertEqual(rows, ["accept-all", "greylist"], out + err)
        self.assertIn("smtpfault test: accept-all is given more than once: it runs once", err)
        self.assertIn("2 scenario(s)", err)

    def test_exclude_leaves_out_scenarios_by_name_or_glob(self):
        tmp = tempfile.mkdtemp(prefix="catalogue-exclude-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--exclude", "greeting-*", "--exclude", "auth-5??.lua",
                                     "--exclude", "accept-all", "--scenario", "greeting-421",
                                     "--scenario", "greeting-554", "--scenario", "auth-535",
                                     "--scenario", "auth-538", "--scenario", "accept-all",
                                     "--scenario", "auth-454", "--json", json_path, "--",
                                     "/bin/true"], timeout=60)
        self.assertEqual(list(verdicts(json_path)), ["auth-454"], out + err)
        self.assertIn("1 scenario(s) (excluded: greeting-421, greeting-554, auth-535, auth-538, "
                      "accept-all)", err)
        self.assertIn("auth-454", out)
        self.assertNotIn("greeting-421", out)
        # A pattern that names nothing is a typo that would run what it meant to leave out.
        status, out, err = run_test(["--exclude", "greylsit", "--", "/bin/true"], timeout=60)
        self.assertEqual(status, 2, out + err)
        self.assertIn("--exclude greylsit: matches none of the scenarios to run (did you mean "
                      "'greylist'?)", err)
        # A file spelled another way than the list spells it is still that file.
        status, out, err = run_test(["--scenarios", SCENARIOS, "--exclude",
                                     os.path.join(SCENARIOS, ".", "greylist.lua"), "--json",
                                     json_path, "--", "/bin/true"], timeout=120)
        self.assertNotIn("greylist", verdicts(json_path), out + err)
        status, out, err = run_test(["--scenario", "greylist", "--exclude", "grey*", "--",
                                     "/bin/true"], timeout=60)
        self.assertEqual(status, 2, out + err)
        self.assertIn("--exclude left no scenario to run", err)
        # From the configuration, shared by runs that choose other scenarios: one that names
        # none of them is no mistake.
        config = os.path.join(tmp, "smtpfault.toml")
        with open(config, "w") as f:
            f.write('[test]\nexclude = ["auth-*", "greeting-*"]\n')
        status, out, err = run_test(["--config", config, "--scenario", "greeting-421",
                                     "--scenario", "accept-all", "--json", json_path, "--",
                                     "/bin/true"], timeout=60)
        self.assertEqual(list(verdicts(json_path)), ["accept-all"], out + err)

    def test_a_command_that_cannot_be_run_is_an_error_not_a_failing_mailer(self):
        # Else a scenario that expects the mailer to fail would pass with a misspelt command.
        tmp = tempfile.mkdtemp(prefix="catalogue-no-command-")
        self.addCleanup(shutil.rmtree, tmp, True)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", "all-recipients-rejected", "--json", json_path,
                                     "--", os.path.join(tmp, "no-such-mailer")], timeout=60)
        self.assertEqual(status, 2, out + err)
        r = verdicts(json_path)["all-recipients-rejected"]
        self.assertEqual(r["verdict"], "ERROR", r)
        self.assertIn("cannot run %s: No such file or directory"
                      % os.path.join(tmp, "no-such-mailer"), r["reason"])

    def test_a_mailer_that_never_connects_passes_no_scenario(self):
        # These scenarios expect the mailer to fail and deliver nothing; one that fails before it
        # even connects (a misspelt command inside a shell, a wrong port) was never exercised.
        tmp = tempfile.mkdtemp(prefix="catalogue-no-connection-")
        self.addCleanup(shutil.rmtree, tmp, True)
        names = ["greeting-521", "starttls-bad-cert", "starttls-injection", "starttls-stripped"]
        crash = [PYTHON, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
        for mailer in (["/bin/false"], ["/bin/true"], ["sh", "-c", "sendmial-typo --to x"], crash):
            json_path = os.path.join(tmp, "report.json")
            args = ["--time-scale", "0.05", "--json", json_path]
            for n in names:
                args += ["--scenario", n]
            status, out, err = run_test(args + ["--"] + mailer, timeout=120)
            self.assertEqual(status, 1, out + err)
            for n, r in verdicts(json_path).items():
                self.assertEqual(r["verdict"], "FAIL", (mailer, n, r))
                self.assertIn("connected: expected the client to connect; it never did",
                              r["reason"], (mailer, n))
                if mailer is crash:
                    self.assertIn("(exit status 139: killed by SIGSEGV", r["reason"])
                    self.assertEqual(r["exit_signals"], [11] * len(r["exit_codes"]))


class OneRecipientMailer(unittest.TestCase):
    """The catalogue judges what the mailer asked for, not careful.py's recipient count: a mailer
    that sends to one recipient and retries properly passes greylist."""

    MAILER = (
        "import os, smtplib, time\n"
        "for attempt in range(40):\n"
        "    try:\n"
        "        s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
        "        s.sendmail('a@x.test', ['only@y.test'], b'Subject: one\\r\\n\\r\\nhi\\r\\n')\n"
        "        s.quit()\n"
        "        break\n"
        "    except smtplib.SMTPRecipientsRefused:\n"
        "        s.quit()\n"
        "        time.sleep(0.25)\n")

    def run_one(self, scenario):
        return judge_mailer(self, scenario, self.MAILER, "--time-scale", TIME_SCALE)

    def test_a_fault_on_the_second_recipient_is_reported_as_not_exercised(self):
        # Such a scenario cannot judge a mailer that sends to one recipient: not a PASS.
        for scenario in ("partial-recipients", "multiline-replies", "too-many-recipients",
                         "auth-535", "auth-538"):
            status, r, output = self.run_one(scenario)
            self.assertEqual((status, r["verdict"]), (1, "FAIL"), scenario + output)
            self.assertIn("not exercised", r["reason"], scenario)

    def test_greylist_with_one_recipient(self):
        status, r, output = judge_mailer(self, "greylist", self.MAILER, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), r["reason"] + output)

    def test_greylist_names_retries_that_all_came_too_early(self):
        # Two recipients, each refused on each retry: still two retries, not four.
        impatient = ("import os, smtplib, sys, time\n"
                     "for attempt in range(3):\n"
                     "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                     "    try:\n"
                     "        s.sendmail('a@x.test', ['one@y.test', 'two@y.test'], b'Subject: one\\r\\n\\r\\nhi\\r\\n')\n"
                     "        s.quit()\n"
                     "        sys.exit(0)\n"
                     "    except smtplib.SMTPRecipientsRefused:\n"
                     "        s.quit()\n"
                     "        time.sleep(0.05)\n"
                     "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "greylist", impatient, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("retried too early: 2 retries came within the 60 s window", r["reason"])


class EhloUnsupported(unittest.TestCase):
    """ehlo-unsupported: a mailer that falls back to HELO and then sends its mail in plaintext
    fails, however it ends; and STARTTLS after HELO is refused like EHLO."""

    MAILER = (
        "import os, smtplib, sys\n"
        "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
        "print(s.ehlo()[0], s.helo()[0], s.docmd('STARTTLS')[0])\n"
        "s.mail('sender@example.com'); s.rcpt('rcpt1@example.com'); s.quit()\n"
        "sys.exit(1)\n")

    def test_plaintext_mail_after_the_fallback_fails(self):
        status, r, output = judge_mailer(self, "ehlo-unsupported", self.MAILER)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("expected no mail in plaintext", r["reason"])
        self.assertIn("502 250 502", r["command_output"])

    def test_over_implicit_tls_the_fallback_delivers(self):
        # Nothing is lost by HELO on the implicit-TLS port: delivering there is right, and not
        # delivering is what fails.
        implicit = (
            "import os, smtplib, ssl, sys\n"
            "ctx = ssl.create_default_context(); ctx.check_hostname = False\n"
            "ctx.verify_mode = ssl.CERT_NONE\n"
            "s = smtplib.SMTP_SSL(os.environ['SMTP_HOST'], int(os.environ['SMTP_TLS_PORT']),"
            " context=ctx)\n"
            "s.ehlo_or_helo_if_needed()\n"
            "%s\n"
            "s.quit()\n")
        deliver = "s.sendmail('a@example.com', ['b@example.com'], 'Subject: x\\r\\n\\r\\nx')"
        status, r, output = judge_mailer(self, "ehlo-unsupported", implicit % deliver)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)
        status, r, output = judge_mailer(self, "ehlo-unsupported", implicit % "sys.exit(1)")
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("expected the message delivered over implicit TLS", r["reason"])


class HandshakeFailOverImplicitTls(unittest.TestCase):
    def test_a_client_of_the_implicit_tls_port_is_exercised_too(self):
        # Its first handshake is aborted; reconnecting and delivering over TLS passes.
        mailer = (
            "import os, smtplib, ssl, time\n"
            "ctx = ssl.create_default_context(); ctx.check_hostname = False\n"
            "ctx.verify_mode = ssl.CERT_NONE\n"
            "for attempt in range(4):\n"
            "    try:\n"
            "        s = smtplib.SMTP_SSL(os.environ['SMTP_HOST'], int(os.environ['SMTP_TLS_PORT']),"
            " context=ctx, timeout=10)\n"
            "        break\n"
            "    except (OSError, ssl.SSLError):\n"
            "        time.sleep(0.2)\n"
            "s.sendmail('a@example.com', ['b@example.com'], 'Subject: x\\r\\n\\r\\nx')\n"
            "s.quit()\n")
        status, r, output = judge_mailer(self, "starttls-handshake-fail", mailer)
        self.assertEqual((status, r["verdict"]), (0, "PASS"), output)


class MultilineRepliesGivingUp(unittest.TestCase):
    def test_a_client_that_read_the_550_and_gave_up_is_told_so(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\n"
                  "codes = [s.rcpt(r)[0] for r in ('b@y.test', 'c@y.test')]\n"
                  "if 550 in codes:\n    s.rset()\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "multiline-replies", mailer,
                                         "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("the client answered the 4-line 550 to the 2nd recipient with RSET, giving "
                      "up the whole message", r["reason"])


class QuitOwedOnlyWhereTheClientCouldSendIt(unittest.TestCase):
    def test_a_session_the_server_closed_after_its_reply_owes_no_quit(self):
        # A 521 greeting closes (RFC 7504); so does a reply a scenario chained with :close().
        tmp = tempfile.mkdtemp(prefix="catalogue-server-closed-")
        self.addCleanup(shutil.rmtree, tmp, True)
        script = os.path.join(tmp, "closes.lua")
        with open(script, "w") as f:
            f.write("function on_connect(s)\n"
                    "  if smtp.count('c') == 1 then return smtp.reply(521) end\nend\n"
                    "function on_mail(s) return smtp.reply(554, '5.7.1', 'no'):close() end\n"
                    "expect { quit = true, delivered = 0, exit = 'failure' }\n")
        mailer = ("import os, smtplib, sys\n"
                  "for _ in range(2):\n"
                  "    try:\n"
                  "        s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "        s.sendmail('a@x.test', ['b@y.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "    except (smtplib.SMTPException, OSError):\n"
                  "        pass\n"
                  "sys.exit(1)\n")
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", script, "--json", json_path, "--",
                                     PYTHON, "-c", mailer], timeout=60)
        r = verdicts(json_path)["closes"]
        self.assertEqual((status, r["verdict"]), (0, "PASS"), (r, out, err))
        checks = {c["name"]: c for c in r["checks"]}
        self.assertTrue(checks["quit"]["passed"], checks["quit"])


class RetryAfterARefusingGreeting(unittest.TestCase):
    def test_reconnecting_after_a_521_greeting_is_a_retry(self):
        # Each new connection meets the 521 again and never gets as far as MAIL: still a retry.
        mailer = ("import os, smtplib, sys, time\n"
                  "for _ in range(3):\n"
                  "    try:\n"
                  "        smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "    except (smtplib.SMTPException, OSError):\n"
                  "        time.sleep(0.05)\n"
                  "sys.exit(1)\n")
        status, r, output = judge_mailer(self, "greeting-521", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("no_retry_after_5xx: expected no retry after", r["reason"])
        self.assertIn("the client tried again in session 000002", r["reason"])


class RelayDeniedNotExercised(unittest.TestCase):
    def test_local_recipients_only_is_not_exercised(self):
        mailer = (CONNECTED + "s.sendmail('a@x.test', ['b@sub.smtpfault.test'], b'Subject: x\\r\\n\\r\\nhi\\r\\n')\n"
                  "s.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("not exercised: every recipient was in smtpfault.test", r["reason"])

    def test_a_client_that_names_no_recipient_is_told_so(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\ns.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("not exercised: the client sent no RCPT", r["reason"])

    def test_a_recipient_refused_for_its_syntax_is_named(self):
        mailer = (CONNECTED + "s.ehlo()\ns.mail('a@x.test')\ns.docmd('RCPT TO:<not an address>')\ns.quit()\n")
        status, r, output = judge_mailer(self, "relay-denied", mailer)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("not exercised: no RCPT reached the relay check; 'RCPT TO:<not an address>' "
                      "got '501", r["reason"])


class GreetingSlowEarlyTalker(unittest.TestCase):
    MAILER = (
        "import os, socket\n"
        "s = socket.create_connection((os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT'])))\n"
        "f = s.makefile('rb')\n"
        "def reply():\n"
        "    while True:\n"
        "        line = f.readline()\n"
        "        if line[3:4] != b'-': return line\n"
        "s.sendall(b'EHLO early.test\\r\\n')   # before the greeting\n"
        "reply(); reply()\n"
        "for c in (b'MAIL FROM:<a@x.test>', b'RCPT TO:<b@y.test>', b'DATA'):\n"
        "    s.sendall(c + b'\\r\\n'); reply()\n"
        "s.sendall(b'Subject: early\\r\\n\\r\\nhi\\r\\n.\\r\\n'); reply()\n"
        "s.sendall(b'QUIT\\r\\n'); reply()\n")

    def test_a_client_that_talks_first_fails(self):
        status, r, output = judge_mailer(self, "greeting-slow", self.MAILER, "--time-scale", TIME_SCALE)
        self.assertEqual((status, r["verdict"]), (1, "FAIL"), output)
        self.assertIn("talked before the greeting", r["reason"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
