"""The built-in catalogue (scenarios/) under `smtpfault test` with the reference mailers.

- careful.py passes every scenario (the expectations describe a careful mailer);
- naive.py fails the ones that target its bugs, with reasons a user can act on;
- the JUnit report validates against the Jenkins/Ant JUnit schema (fixtures/junit/junit.xsd);
- docs/catalogue.md shows each scenario's own expectations;
- --jobs 4 gives the same verdicts as a serial run;
- `smtpfault list` shows every scenario with its description, `smtpfault check` accepts each.
"""

import datetime
import glob
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from smtpfault_server import TEST_CA, SmtpfaultServer, binary_path, server_environment
from catalogue_case import (PYTHON, ROOT, SCENARIOS, SEED, TIME_SCALE, assert_valid_junit,
                            run_test, scratch_folder, verdicts)

CAREFUL = os.path.join(ROOT, "examples", "mailers", "careful.py")
NAIVE = os.path.join(ROOT, "examples", "mailers", "naive.py")

CATALOGUE = [
    "accept-all", "magic-addresses", "greeting-421", "greeting-554", "greeting-521",
    "greeting-slow", "greeting-multiline", "reply-code-matrix", "ehlo-unsupported",
    "starttls-stripped", "starttls-454", "starttls-handshake-fail", "starttls-bad-cert",
    "starttls-injection", "auth-535", "auth-454", "auth-538", "auth-mech-fallback",
    "relay-denied", "partial-recipients", "all-recipients-rejected", "too-many-recipients",
    "greylist", "size-limit", "no-8bitmime", "no-smtputf8", "no-pipelining", "bare-lf",
    "slow-final-reply", "late-reply",
    "drop-after-dot", "drop-mid-data", "data-421", "line-too-long", "pipelining-failure",
    "session-message-cap", "idle-421", "quit-variants", "connection-limit",
    "multiline-replies", "malformed-replies",
]


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
        # A folder of folders: the ones with scenarios are named.
        inner = os.path.join(tmp, "holder", "server")
        os.makedirs(inner)
        with open(os.path.join(inner, "x.lua"), "w") as f:
            f.write("local x = 1\n")
        p = subprocess.run([binary_path(), "check", os.path.join(tmp, "holder")],
                           env=server_environment(), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no .lua files there (only the folder itself is read, not its subfolders; "
                      "these have some: %s)" % inner, p.stderr)
        # Many such subfolders: a few are named, the rest counted.
        for i in range(12):
            sub = os.path.join(tmp, "holder", "more%02d" % i)
            os.makedirs(sub)
            with open(os.path.join(sub, "y.lua"), "w") as f:
                f.write("local y = 1\n")
        p = subprocess.run([binary_path(), "check", os.path.join(tmp, "holder")],
                           env=server_environment(), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn(os.path.join(tmp, "holder", "more04") + " and 8 more)", p.stderr)
        self.assertNotIn("more05", p.stderr)
        self.assertNotIn(inner, p.stderr)

    def test_a_file_named_without_a_path_is_told_how_to_name_it(self):
        tmp = tempfile.mkdtemp(prefix="check-bare-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(tmp, "myscen"), "w") as f:
            f.write("local x = 1\n")
        p = subprocess.run([binary_path(), "check", "myscen"], cwd=tmp, env=server_environment(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("unknown scenario 'myscen': a name without '/' or '.lua' is a built-in's",
                      p.stderr)
        self.assertIn("for the file of that name write ./myscen", p.stderr)
        self.assertNotIn("not a file", p.stderr)
        p = subprocess.run([binary_path(), "check", "./myscen"], cwd=tmp,
                           env=server_environment(), capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class CatalogueRuns(unittest.TestCase):
    """One careful run, serial (--jobs 1), shared by the report tests and compared with a
    parallel one."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="catalogue-")
        cls.junit = os.path.join(cls.tmp, "careful.xml")
        cls.json = os.path.join(cls.tmp, "careful.json")
        started = time.monotonic()
        cls.started_at = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
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
        for name, r in results.items():
            self.assertEqual((r["scenario"], r["file"]),
                             (name, os.path.join(SCENARIOS, name + ".lua")))
        failed = {n: r["reason"] for n, r in results.items() if r["verdict"] != "PASS"}
        self.assertEqual(failed, {}, self.out)
        self.assertEqual(self.status, 0, self.out + self.err)
        self.assertIn("%d passed, 0 failed, 0 errors" % len(CATALOGUE), self.out)
        self.assertLess(self.seconds, 100)
        # Seconds as people write them ("0.31"), not Boost's "3.1E-1".
        with open(self.json) as f:
            text = f.read()
        self.assertRegex(text, r'"seconds":[0-9]+\.[0-9]+,')
        self.assertNotRegex(text, r'"seconds":[0-9.]+E')

    def test_junit_report_matches_the_schema(self):
        assert_valid_junit(self, self.junit)
        # The seed, to replay a failure seen in CI.
        import xml.etree.ElementTree as ET
        suite = ET.parse(self.junit).getroot().find("testsuite")
        self.assertEqual([(x.get("name"), x.get("value"))
                          for x in suite.find("properties").findall("property")],
                         [("seed", SEED)])
        # When the run started (UTC) and where, as CI views show them beside the suite.
        stamp = datetime.datetime.strptime(suite.get("timestamp"), "%Y-%m-%dT%H:%M:%S")
        self.assertLessEqual(abs((stamp - self.started_at).total_seconds()), 2, stamp)
        self.assertEqual(suite.get("hostname"), socket.gethostname())

    def test_catalogue_naive(self):
        json_path = os.path.join(self.tmp, "naive.json")
        junit_path = os.path.join(self.tmp, "naive.xml")
        started = time.monotonic()
        status, out, err = run_test(
            ["--scenarios", SCENARIOS, "--time-scale", TIME_SCALE, "--seed", SEED, "--jobs", "2",
             "--json", json_path, "--junit", junit_path, "--", PYTHON, NAIVE])
        wall = time.monotonic() - started
        self.assertEqual(status, 1, out + err)
        # JUnit: each failure typed by the check that failed, for CI views that group by it;
        # the suite's time is the run's own, not the sum of cases run side by side.
        import xml.etree.ElementTree as ET
        suite = ET.parse(junit_path).getroot().find("testsuite")
        # Named as the built-ins are, not by a path that depends on where the checkout lives.
        cases = {c.get("name"): c for c in suite.findall("testcase")}
        self.assertEqual(sorted(cases), sorted(CATALOGUE))
        self.assertEqual(cases["greylist"].find("failure").get("type"), "retried_after_4xx")
        self.assertEqual(cases["line-too-long"].find("failure").get("type"), "line_length")
        self.assertLessEqual(float(suite.get("time")), wall)
        self.assertGreaterEqual(float(suite.get("time")),
                                max(float(c.get("time")) for c in cases.values()))
        results = verdicts(json_path)
        # scenario -> words the reason must contain
        must_fail = {
            "starttls-stripped": ["no_plaintext_auth", "AUTH over plaintext"],
            "starttls-bad-cert": ["accepted every bad certificate", "expired"],
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


class StartTlsTurns(unittest.TestCase):
    """starttls-454 and starttls-bad-cert count the handshakes a STARTTLS starts: a STARTTLS
    refused anyway, and (for 454) the implicit-TLS port's handshakes, once used up a turn."""

    def start(self, scenario):
        srv = SmtpfaultServer("--scenario", scenario).start()
        self.addCleanup(srv.cleanup)
        self.addCleanup(srv.stop)
        return srv

    def test_454_goes_to_the_first_two_starttls_carried_out(self):
        srv = self.start("starttls-454")
        with srv.connect(tls=True) as c:
            c.ehlo()
        with srv.connect() as c:
            c.cmd("STARTTLS", expect=503)
        for _ in range(2):
            with srv.connect() as c:
                c.ehlo()
                c.cmd("STARTTLS", expect=454)
        with srv.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=220)

    def test_the_transcript_shows_the_octets_injected_after_220(self):
        srv = self.start("starttls-injection")
        with srv.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=220)
            sid = srv.session_of(c)
        line = srv.wait_for_line(r" %s \*: injected plaintext after 220" % sid)
        self.assertIn(r"'250-smtpfault.test\r\n250 AUTH PLAIN LOGIN\r\n'", line)

    def test_a_refused_starttls_takes_no_certificates_turn(self):
        srv = self.start("starttls-bad-cert")
        with srv.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=220)
            c.wrap_tls()   # the expired certificate, not checked here
            c.ehlo()
            c.cmd("STARTTLS", expect=503)
        with srv.connect() as c:
            c.ehlo()
            c.cmd("STARTTLS", expect=220)
            ctx = ssl.create_default_context(cafile=TEST_CA)
            with self.assertRaises(ssl.SSLCertVerificationError) as caught:
                ctx.wrap_socket(c.sock, server_hostname="localhost")
        self.assertIn("Hostname mismatch", str(caught.exception))

    def test_every_connection_of_a_run_gets_that_runs_certificate(self):
        # A mailer that tries twice per run meets its run's certificate twice: run 1 the expired
        # one, run 2 the wrong host's, not the next in turn on its second try.
        mailer = ("import os, smtplib, ssl\n"
                  "for _ in range(2):\n"
                  "    s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "    try:\n"
                  "        s.starttls(context=ssl.create_default_context("
                  "cafile=os.environ['SMTP_CA_FILE']))\n"
                  "    except ssl.SSLError as e:\n"
                  "        print('refused:', e.reason if hasattr(e, 'reason') else e)\n"
                  "    s.close()\n"
                  "raise SystemExit(1)\n")
        report = os.path.join(scratch_folder(self), "report.json")
        status, out, err = run_test(["--scenario", "starttls-bad-cert", "--json", report, "--",
                                     PYTHON, "-c", mailer])
        self.assertEqual(status, 1, out + err)
        r = verdicts(report)["starttls-bad-cert"]
        self.assertIn("run 1 (the expired certificate) made 2 connections", r["reason"])
        runs = r["command_output"].split("--- run ")[1:]
        self.assertEqual(len(runs), 5, r["command_output"])
        self.assertEqual(runs[0].count("CERTIFICATE_VERIFY_FAILED"), 2, runs[0])
        fault_lines = re.findall(r"fault: certificate (\w+)", r["transcript"])
        self.assertEqual(fault_lines, ["expired", "expired", "wrong_host", "wrong_host",
                                       "self_signed", "self_signed", "unknown_ca", "unknown_ca"])



class RelayDeniedWire(unittest.TestCase):
    def test_postmaster_with_no_domain_is_taken_and_other_domains_refused(self):
        # RFC 5321 4.5.1: every server takes <Postmaster>, relay or not.
        with SmtpfaultServer("--scenario", "relay-denied") as srv, srv.connect() as c:
            c.ehlo()
            c.cmd("MAIL FROM:<a@client.example>", expect=250)
            for rcpt, code in (("Postmaster", 250), ("postmaster", 250),
                               ("postmaster@elsewhere.example", 554),
                               ("someone@mx.smtpfault.test", 250)):
                c.cmd("RCPT TO:<%s>" % rcpt, expect=code)

class EhloChangesOneLine(unittest.TestCase):
    """size-limit and auth-mech-fallback change one EHLO line each and keep the server's
    others (SMTPUTF8, CHUNKING, DSN among them), so that one fault is what is tested."""

    def ehlo_lines(self, *args):
        with SmtpfaultServer(*args) as srv, srv.connect() as c:
            return c.ehlo().lines[1:]

    def test_size_limit_changes_only_the_size_line(self):
        own = self.ehlo_lines()
        changed = self.ehlo_lines("--scenario", "size-limit")
        self.assertIn("SIZE 10485760", own)
        self.assertEqual(changed, ["SIZE 2000" if x.startswith("SIZE") else x for x in own])
        for keyword in ("SMTPUTF8", "CHUNKING", "DSN"):
            self.assertIn(keyword, changed)

    def test_size_limit_advertises_the_servers_own_limit_when_smaller(self):
        with SmtpfaultServer("--scenario", "size-limit", "--set",
                             "limits.max_message_size=1000") as srv, srv.connect() as c:
            self.assertIn("SIZE 1000", c.ehlo().lines)
            c.cmd("MAIL FROM:<a@example.com> SIZE=1500", expect=552)
            c.cmd("MAIL FROM:<a@example.com> SIZE=900", expect=250)

    def test_auth_mech_fallback_changes_only_the_auth_line(self):
        own = self.ehlo_lines()
        changed = self.ehlo_lines("--scenario", "auth-mech-fallback")
        self.assertTrue(any(x.startswith("AUTH ") for x in own))
        self.assertEqual(changed, ["AUTH CRAM-MD5 PLAIN LOGIN" if x.startswith("AUTH ") else x
                                   for x in own])
        for keyword in ("SMTPUTF8", "CHUNKING", "DSN"):
            self.assertIn(keyword, changed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
