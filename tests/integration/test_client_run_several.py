"""`smtpfault run` with several scripts: named one by one, as a folder or as a glob of the
built-in probes; one summary, one exit status and one report for all of them."""

import json
import os
import signal
import subprocess
import unittest
import xml.etree.ElementTree as ET

from smtpfault_server import binary_path, server_environment
from client_run_case import ClientRunCase

PASSING = """
    connect {}
    expect(220)
    ehlo("several.test")
    quit()
"""

FAILING = """
    connect {}
    expect(554, {name = "a greeting that refuses"})
    quit()
"""


class SeveralScriptsTest(ClientRunCase):
    def reports(self, *scripts, extra=()):
        junit = os.path.join(self.tmp.name, "several.xml")
        js = os.path.join(self.tmp.name, "several.json")
        p = subprocess.run([binary_path(), "run", *scripts, "--target",
                            "127.0.0.1:%d" % self.server.port, "--junit", junit, "--json", js,
                            "--seed", "9", *extra],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        with open(js) as f:
            doc = json.load(f)
        suites = ET.parse(junit).getroot().findall("testsuite")
        return p, doc, suites

    def test_each_script_runs_and_the_worst_verdict_sets_the_exit_status(self):
        good = self.script(PASSING, name="good.lua")
        bad = self.script(FAILING, name="bad.lua")
        other = self.script(PASSING, name="other.lua")
        p, doc, suites = self.reports(good, bad, other, good)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        # A script named twice runs once.
        self.assertIn("smtpfault run: %s is given more than once: it runs once" % good, p.stderr)
        # Each with its own header and summary, then one line each.
        self.assertEqual(p.stdout.count("smtpfault run: %s against" % good), 1, p.stdout)
        self.assertIn("FAIL %s:3: a greeting that refuses" % bad, p.stdout)
        self.assertIn("smtpfault run: 3 scripts against 127.0.0.1:%d (seed 9)" % self.server.port,
                      p.stdout)
        summary = p.stdout[p.stdout.index("smtpfault run: 3 scripts"):].splitlines()
        self.assertRegex(summary[1], r"^  pass +%s +3 passed, 0 failed$" % good)
        self.assertRegex(summary[2], r"^  FAIL +%s +1 passed, 1 failed$" % bad)
        self.assertEqual(summary[4], "fail: of 3 scripts, 2 passed, 1 failed, 0 errors, 0 skipped")
        # A JUnit suite per script, named after it; the JSON report holds each script's report.
        self.assertEqual([s.get("name") for s in suites],
                         ["smtpfault run good", "smtpfault run bad", "smtpfault run other"])
        self.assertEqual([s.get("failures") for s in suites], ["0", "1", "0"])
        self.assertEqual((doc["verdict"], doc["exit_code"], doc["seed"]), ("fail", 1, 9))
        self.assertEqual([s["verdict"] for s in doc["scripts"]], ["pass", "fail", "pass"])
        self.assertEqual(doc["scripts"][1]["script"], bad)
        self.assertIn("S: 220", " ".join(doc["scripts"][1]["connections"][0]["transcript"]))

    def test_a_script_that_does_not_load_is_an_error_and_the_others_still_run(self):
        good = self.script(PASSING, name="good.lua")
        broken = self.script("connect {}\nexpect(220\n", name="broken.lua")
        p, doc, suites = self.reports(broken, good)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("%s:3:" % broken, p.stderr)
        self.assertIn("smtpfault run: %s against" % good, p.stdout)
        self.assertEqual([s["verdict"] for s in doc["scripts"]], ["error", "pass"])
        self.assertEqual(doc["verdict"], "error")
        self.assertEqual(suites[0].get("errors"), "1")
        self.assertIn("error: of 2 scripts, 1 passed, 0 failed, 1 errors", p.stdout)

    def test_a_folder_runs_its_lua_files_in_name_order(self):
        folder = os.path.join(self.tmp.name, "suite")
        os.makedirs(folder, exist_ok=True)
        for name in ["b-second.lua", "a-first.lua", "notes.txt"]:
            with open(os.path.join(folder, name), "w") as f:
                f.write(PASSING)
        p, doc, suites = self.reports(folder)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([s.get("name") for s in suites],
                         ["smtpfault run a-first", "smtpfault run b-second"])
        self.assertEqual(len(doc["scripts"]), 2)

    def test_a_glob_names_built_in_probes(self):
        p, doc, suites = self.reports("probe-[bc]*", extra=["--quiet"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([s.get("name") for s in suites],
                         ["smtpfault run probe-bdat", "smtpfault run probe-conformance"])
        self.assertEqual(doc["verdict"], "pass")

    def test_a_glob_that_matches_no_probe_runs_nothing_and_lists_them(self):
        p = self.run_client("probe-nothing-*")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no built-in probe matches 'probe-nothing-*' (they are probe-", p.stderr)
        self.assertIn("probe-smuggling", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_scripts_of_one_file_name_get_junit_suites_named_by_their_paths(self):
        for sub in ("one", "two"):
            os.makedirs(os.path.join(self.tmp.name, sub), exist_ok=True)
        a = self.script(PASSING, name="one/smoke.lua")
        b = self.script(FAILING, name="two/smoke.lua")
        p, doc, suites = self.reports(a, b)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual([s.get("name") for s in suites],
                         ["smtpfault run " + a[:-4], "smtpfault run " + b[:-4]])
        self.assertEqual({c.get("classname") for s in suites for c in s.findall("testcase")},
                         {"smtpfault.run." + n[1:-4].replace("/", ".") for n in (a, b)})

    def test_a_folder_of_one_script_still_writes_a_batchs_reports(self):
        folder = os.path.join(self.tmp.name, "single")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "only.lua"), "w") as f:
            f.write(PASSING)
        # Neither an editor's lock file nor a folder named like a script is one.
        os.symlink("/nonexistent/owner@host", os.path.join(folder, ".#only.lua"))
        os.makedirs(os.path.join(folder, "sub.lua"))
        p, doc, suites = self.reports(folder)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([s["verdict"] for s in doc["scripts"]], ["pass"])
        self.assertIn("smtpfault run: 1 script against", p.stdout)
        self.assertIn("pass: of 1 script, 1 passed", p.stdout)

    def test_a_quoted_glob_of_files_runs_the_files_it_matches(self):
        folder = os.path.join(self.tmp.name, "globbed")
        os.makedirs(folder, exist_ok=True)
        for name in ("b.lua", "a.lua"):
            with open(os.path.join(folder, name), "w") as f:
                f.write(PASSING)
        p, doc, suites = self.reports(os.path.join(folder, "*.lua"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([s.get("name") for s in suites], ["smtpfault run a", "smtpfault run b"])
        p = self.run_client(os.path.join(folder, "x*.lua"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("no file matches '%s'" % os.path.join(folder, "x*.lua"), p.stderr)

    def test_a_missing_script_is_said_before_the_first_one_runs(self):
        good = self.script(PASSING, name="good.lua")
        missing = os.path.join(self.tmp.name, "missing.lua")
        p = subprocess.run([binary_path(), "run", good, missing, "--target",
                            "127.0.0.1:%d" % self.server.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60, env=server_environment())
        self.assertEqual(p.returncode, 2, p.stdout)
        said = p.stdout.index("%s: cannot open scenario" % missing)
        self.assertLess(said, p.stdout.index("smtpfault run: %s against" % good), p.stdout)
        self.assertIn("(the other scripts run)", p.stdout)
        self.assertEqual(p.stdout.count("cannot open scenario"), 2, p.stdout)  # and in the summary

    def test_an_unreachable_target_is_exit_3_for_all(self):
        good = self.script(PASSING, name="good.lua")
        other = self.script(PASSING, name="other.lua")
        p = subprocess.run([binary_path(), "run", good, other, "--target", "127.0.0.1:1"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertEqual(p.stderr.count("cannot connect to 127.0.0.1:1"), 2, p.stderr)

    def test_json_lines_end_with_the_counts_of_all_scripts(self):
        good = self.script(PASSING, name="good.lua")
        bad = self.script(FAILING, name="bad.lua")
        p = self.run_client(good, "--log-format", "json")
        self.assertEqual(json.loads(p.stdout.splitlines()[-1])["verdict"], "pass")
        p = subprocess.run([binary_path(), "run", good, bad, "--target",
                            "127.0.0.1:%d" % self.server.port, "--log-format", "json"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual([line["run"] for line in lines if "run" in line], [good, bad])
        last = lines[-1]
        self.assertEqual((last["scripts"], last["passed"], last["failed"], last["verdict"],
                          last["exit_code"]), (2, 1, 1, "fail", 1), last)
        # A script that does not load has its "run" and "verdict" lines too.
        missing = os.path.join(self.tmp.name, "missing.lua")
        p = subprocess.run([binary_path(), "run", missing, good, "--target",
                            "127.0.0.1:%d" % self.server.port, "--log-format", "json"],
                           capture_output=True, text=True, timeout=60, env=server_environment())
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(lines[0]["run"], missing)
        self.assertEqual(lines[1]["verdict"], "error")
        self.assertIn("cannot open scenario", lines[1]["error"])

    def test_an_interrupt_stops_the_run_and_the_rest_is_not_run(self):
        sleeper = self.script("""
            connect {}
            expect(220)
            sleep(60)
        """, name="sleeper.lua")
        good = self.script(PASSING, name="good.lua")
        other = self.script(PASSING, name="other.lua")
        js = os.path.join(self.tmp.name, "stopped.json")
        junit = os.path.join(self.tmp.name, "stopped.xml")
        proc = subprocess.Popen([binary_path(), "run", sleeper, good, other, "--target",
                                 "127.0.0.1:%d" % self.server.port, "--json", js, "--junit", junit],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=server_environment())
        try:
            for line in proc.stdout:
                if "S: 220" in line:
                    break
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 143, out + err)
        self.assertIn("interrupted by SIGTERM", err)
        self.assertNotIn("smtpfault run: %s against" % good, out)
        self.assertIn("error: of 3 scripts, 0 passed, 0 failed, 1 errors, 0 skipped, 2 not run",
                      out)
        self.assertIn("  not run %s\n  not run %s\n" % (good, other), out)
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual((doc["exit_code"], len(doc["scripts"])), (143, 1))
        self.assertEqual(doc["not_run"], [good, other])
        # The JUnit report lists them as skipped.
        suites = ET.parse(junit).getroot().findall("testsuite")
        self.assertEqual([s.get("skipped") for s in suites], ["0", "1", "1"])
        self.assertIn("not run", suites[2].find("testcase/skipped").get("message"))


if __name__ == "__main__":
    unittest.main()
