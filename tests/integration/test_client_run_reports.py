"""`smtpfault run`'s reports: --junit and --json (also after SIGTERM or SIGINT, or a script
that does not load), tables and NULs in them, the steps' times, names that stay when the
script is edited."""

import json
import os
import signal
import subprocess
import unittest
import xml.etree.ElementTree as ET

from smtpfault_server import binary_path, server_environment, server_with_scenario
from client_run_case import ClientRunCase


class ReportsTest(ClientRunCase):
    def test_junit_and_json_reports(self):
        junit = os.path.join(self.tmp.name, "run.xml")
        js = os.path.join(self.tmp.name, "run.json")
        p = self.run_client("probe-pipelining", "--junit", junit, "--json", js, "--seed", "5",
                            "--quiet")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("[1] C:", p.stdout)
        self.assertTrue(p.stdout.startswith("smtpfault run: probe-pipelining against "
                                            "127.0.0.1:%d (seed 5)" % self.server.port), p.stdout)
        suite = ET.parse(junit).getroot().find("testsuite")
        self.assertEqual(suite.get("failures"), "0")
        self.assertGreater(int(suite.get("tests")), 5)
        # Named after the script, so that merged reports of several runs stay apart.
        self.assertEqual(suite.get("name"), "smtpfault run probe-pipelining")
        self.assertEqual({c.get("classname") for c in suite.findall("testcase")},
                         {"smtpfault.run.probe-pipelining"})
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual(doc["verdict"], "pass")
        self.assertEqual(doc["seed"], 5)
        self.assertEqual(doc["report"]["group1"], "250 250 501 354")
        self.assertIn("C: MAIL FROM:<probe@smtpfault.test>", doc["connections"][0]["transcript"])

    def test_sigterm_and_sigint_still_write_the_reports(self):
        path = self.script("""
            connect {}
            expect(220)
            sleep(60)
        """, name="sleeper.lua")
        for sig, status, name in [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]:
            junit = os.path.join(self.tmp.name, "stopped.xml")
            js = os.path.join(self.tmp.name, "stopped.json")
            proc = subprocess.Popen([binary_path(), "run", path, "--target",
                                     "127.0.0.1:%d" % self.server.port, "--junit", junit,
                                     "--json", js], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=server_environment())
            try:
                for line in proc.stdout:  # line-buffered: the greeting shows as it arrives
                    if "S: 220" in line:
                        break
                proc.send_signal(sig)
                out, err = proc.communicate(timeout=20)
            finally:
                if proc.poll() is None:
                    proc.kill()
            self.assertEqual(proc.returncode, status, out + err)
            self.assertIn("interrupted by %s after" % name, err)
            self.assertIn("waiting at %s:4" % path, err)
            error = ET.parse(junit).getroot().find("testsuite/testcase/error")
            self.assertIn("interrupted by %s" % name, error.get("message"))
            self.assertEqual(error.get("type"), "interrupted")
            with open(js) as f:
                doc = json.load(f)
            self.assertEqual((doc["verdict"], doc["exit_code"]), ("error", status))
            self.assertEqual(doc["steps"][0]["passed"], True)
            self.assertIn("S: 220", " ".join(doc["connections"][0]["transcript"]))

    def test_a_reported_table_shows_its_contents(self):
        path = self.script("""
            report("codes", { 250, 354, group = "a b", nested = { x = 1 } })
            local big = {}
            for i = 1, 100000 do big[i] = i end
            report("big", big)
            report("odd", { "a\\nb", setmetatable({}, { __tostring = function() return "T" end }) })
            report("count", 3) report("ratio", 0.5) report("ok", false) report("none", nil)
            report("huge", math.huge) report("digits", "007") report("nan", 0/0)
        """)
        p = self.run_client(path, "--json", os.path.join(self.tmp.name, "t.json"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        shown = '{250, 354, group = "a b", nested = {x = 1}}'
        self.assertIn("codes: " + shown, p.stdout)
        with open(os.path.join(self.tmp.name, "t.json")) as f:
            report = json.load(f)["report"]
        self.assertEqual(report["codes"], shown)
        self.assertTrue(report["big"].endswith(", 1000, ...}"), report["big"][-40:])
        self.assertEqual(report["odd"], '{"a\\nb", T}')
        # Scalars keep their type in the JSON; text stays text, and what JSON cannot hold is text.
        self.assertEqual([report[k] for k in ("count", "ratio", "ok", "none", "huge", "digits",
                                              "nan")],
                         [3, 0.5, False, None, "inf", "007", "nan"])
        self.assertIn("  count: 3\n", p.stdout)
        self.assertIn("  none: nil\n", p.stdout)
        self.assertIn("  nan: nan\n", p.stdout)   # as the JSON has it, not the platform's -nan

    def test_a_nul_in_a_reply_reaches_the_verdict_and_the_reports_whole(self):
        raw = server_with_scenario(
            self, 'function on_command(s, cmd)\n'
                  '  if cmd.verb == "VRFY" then return smtp.raw("250-first\\0x\\r\\n250 second\\r\\n") end\n'
                  'end\n')
        path = self.script("""
            connect {}
            expect(220)
            send("VRFY x")
            local r = expect(250)
            report("text", r.text)
        """, name="nul.lua")
        js = os.path.join(self.tmp.name, "nul.json")
        p = self.run_client(path, "--json", js, target="127.0.0.1:%d" % raw.port)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("got 250 first\\x00x (+1 lines)", p.stdout)  # a terminal sees no NUL
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual(doc["steps"][1]["detail"], "got 250 first\x00x (+1 lines)")
        self.assertEqual(doc["report"]["text"], "first\x00x\nsecond")

    def test_an_unwritable_report_is_refused_before_the_run(self):
        a_file = os.path.join(self.tmp.name, "a-file")
        open(a_file, "w").close()
        unmakeable = os.path.join(a_file, "r.xml")
        p = self.run_client("probe-pipelining", "--junit", unmakeable)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("r.xml: cannot make the directory %s" % a_file, p.stderr)
        self.assertNotIn("C: EHLO", p.stdout)  # nothing was sent
        # A report that can be written is not made before the run: a run killed on the way
        # leaves no empty file for CI to choke on; the finished one is renamed into place.
        junit = os.path.join(self.tmp.name, "whole.xml")
        p = self.run_client("probe-pipelining", "--junit", junit, "--json", "/dev/null")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ET.parse(junit)
        self.assertFalse(os.path.exists(junit + ".partial"))

    def test_a_script_that_does_not_load_still_writes_its_reports(self):
        path = self.script("connect {\n", name="broken.lua")
        junit = os.path.join(self.tmp.name, "broken.xml")
        js = os.path.join(self.tmp.name, "broken.json")
        p = self.run_client(path, "--junit", junit, "--json", js)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        suite = ET.parse(junit).getroot().find("testsuite")
        self.assertEqual((suite.get("tests"), suite.get("errors")), ("1", "1"))
        self.assertIn("broken.lua:2:", suite.find("testcase").find("error").get("message"))
        with open(js) as f:
            doc = json.load(f)
        self.assertEqual((doc["verdict"], doc["exit_code"]), ("error", 2))
        self.assertIn("broken.lua:2:", doc["error"])

    def test_report_times_are_those_of_the_steps(self):
        path = self.script("""
            local c = connect {}
            c:expect(220)
            sleep(0.3)
            check(true, "after a pause")
        """, name="timed.lua")
        junit = os.path.join(self.tmp.name, "timed.xml")
        js = os.path.join(self.tmp.name, "timed.json")
        p = self.run_client(path, "--junit", junit, "--json", js)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        suite = ET.parse(junit).getroot().find("testsuite")
        cases = {c.get("name"): float(c.get("time")) for c in suite.findall("testcase")}
        paused = [t for name, t in cases.items() if "after a pause" in name]
        self.assertEqual(len(paused), 1, cases)
        self.assertGreaterEqual(paused[0], 0.29)
        self.assertGreaterEqual(float(suite.get("time")), 0.29)
        with open(js) as f:
            steps = json.load(f)["steps"]
        self.assertGreaterEqual(steps[-1]["seconds"], 0.29)

    def test_junit_names_stay_when_the_script_is_edited(self):
        body = """
            local c = connect {}
            c:expect(220)
            check(true, "same words")
            check(true, "same words")
            check(false, "this one fails")
        """
        names = []
        for i, padding in enumerate(["", "\n\n-- lines added above move every step\n"]):
            path = self.script(padding + body, name="named%d.lua" % i)
            junit = os.path.join(self.tmp.name, "named%d.xml" % i)
            p = self.run_client(path, "--junit", junit, "--quiet")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            cases = ET.parse(junit).getroot().find("testsuite").findall("testcase")
            names.append([c.get("name") for c in cases])
            failure = [c.find("failure") for c in cases if c.find("failure") is not None]
            self.assertEqual(len(failure), 1)
            # The place is in the failure message instead.
            self.assertRegex(failure[0].get("message"), r"named%d\.lua:\d+:" % i)
            self.assertEqual(failure[0].get("type"), "failed step")   # not the file's name
        self.assertEqual(names[0], names[1])
        self.assertIn("same words", names[0])
        self.assertIn("same words (2)", names[0])
        self.assertIn("this one fails", names[0])
        self.assertFalse([n for n in names[0] if ".lua" in n], names[0])


if __name__ == "__main__":
    unittest.main()
