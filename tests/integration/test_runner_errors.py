"""Errors that are not the mailer's under `smtpfault test`: a hook or custom check that fails
while the mailer runs is the scenario's error (ERROR, exit 2), and so is a command that cannot
be run, and a custom check that returns no boolean; several checks are told apart; a mailer that
never connects passes no scenario; a scenario given twice runs once; --exclude leaves scenarios
out."""

import json
import os
import signal
import subprocess
import time
import unittest
from xml.etree import ElementTree

from catalogue_case import PYTHON, SCENARIOS, run_test, scratch_folder, scratch_path, verdicts
from smtpfault_server import binary_path, server_environment, write_file


class ScenarioErrorDuringTheRun(unittest.TestCase):
    MAILER = ("import os, smtplib\n"
              "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
              "s.sendmail('a@x.test', ['b@y.test'], b'Subject: t\\r\\n\\r\\nhi\\r\\n')\n"
              "s.quit()\n")

    def run_scenario(self, name, lua):
        """Runs a correct mailer against the scenario text; returns (its path, its result)."""
        tmp = scratch_folder(self)
        script = write_file(tmp, name + ".lua", lua)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", script, "--json", json_path, "--",
                                     PYTHON, "-c", self.MAILER], timeout=120)
        self.assertEqual(status, 2, out + err)
        return script, verdicts(json_path)[name]

    def test_a_hook_error_is_reported_as_the_scenarios_not_the_mailers(self):
        script, r = self.run_scenario(
            "typo", "expect { delivered = 1 }\nfunction on_mail(s, m) return smtp[\"rejct\"]() end\n")
        self.assertEqual(r["verdict"], "ERROR", r)
        self.assertIn("scenario error: %s:2: " % script, r["reason"])
        self.assertIn("rejct", r["reason"])

    def test_a_scenario_that_does_not_load_is_a_scenario_error_in_junit(self):
        import xml.etree.ElementTree as ET
        tmp = scratch_folder(self)
        script = write_file(tmp, "broken.lua", "function on_rcpt(s, r)\n  return smtp.reply(\nend\n")
        junit = os.path.join(tmp, "report.xml")
        status, out, err = run_test(["--scenario", script, "--junit", junit, "--",
                                     PYTHON, "-c", self.MAILER], timeout=120)
        self.assertEqual(status, 2, out + err)
        error = ET.parse(junit).getroot().find(".//testcase/error")
        self.assertEqual(error.get("type"), "scenario error")   # not the file's name
        self.assertIn("broken.lua:3:", error.get("message"))

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
        tmp = scratch_folder(self)
        script = write_file(tmp, "twochecks.lua",
                            "expect { check = function(run) return true end }\n"
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
        json_path = scratch_path(self, "report.json")
        status, out, err = run_test(["--scenario", "accept-all", "--scenario", "accept-all",
                                     "--scenario", os.path.join(SCENARIOS, "accept-all.lua"),
                                     "--scenario", "greylist", "--json", json_path, "--",
                                     "/bin/true"], timeout=60)
        with open(json_path, encoding="utf-8") as f:
            rows = [r["scenario"] for r in json.load(f)["results"]]
        self.assertEqual(rows, ["accept-all", "greylist"], out + err)
        self.assertIn("smtpfault test: accept-all is given more than once: it runs once", err)
        self.assertIn("smtpfault test: %s is the same scenario as accept-all (same name and "
                      "text): it runs once, as accept-all" % os.path.join(SCENARIOS,
                                                                         "accept-all.lua"), err)
        self.assertIn("2 scenario(s)", err)

    def test_files_are_named_as_built_ins_unless_two_would_share_a_name(self):
        # CI test names must not depend on where the checkout lives; two files called
        # greylist.lua, one of them beside the built-in greylist, keep their paths.
        tmp = scratch_folder(self)
        first, second = os.path.join(tmp, "one"), os.path.join(tmp, "two")
        os.mkdir(first)
        os.mkdir(second)
        mine = write_file(first, "mine.lua", "-- mine\n")
        one = write_file(first, "greylist.lua", "-- one\n")
        two = write_file(second, "greylist.lua", "-- two\n")
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenarios", first, "--scenario", two,
                                     "--scenario", "greylist", "--json", json_path, "--",
                                     "/bin/true"], timeout=60)
        with open(json_path, encoding="utf-8") as f:
            rows = [(r["scenario"], r.get("file")) for r in json.load(f)["results"]]
        self.assertEqual(sorted(rows), sorted([(one, one), ("mine", mine), (two, two),
                                               ("greylist", None)]), out + err)
        self.assertRegex(out, r"(?m)^mine +FAIL ")

    def test_exclude_leaves_out_scenarios_by_name_or_glob(self):
        tmp = scratch_folder(self)
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
        # Every scenario left out by the file: the file is named, not a flag never given.
        status, out, err = run_test(["--config", config, "--scenario", "greeting-421", "--",
                                     "/bin/true"], timeout=60)
        self.assertEqual(status, 2, out + err)
        self.assertIn(config + ":2:12: key 'test.exclude' left no scenario to run", err)
        # A standing policy: --exclude adds to it, it does not lift it.
        status, out, err = run_test(["--config", config, "--exclude", "accept-all", "--scenario",
                                     "auth-535", "--scenario", "accept-all", "--scenario",
                                     "no-8bitmime", "--json", json_path, "--", "/bin/true"],
                                    timeout=60)
        self.assertEqual(list(verdicts(json_path)), ["no-8bitmime"], out + err)

    def test_scenario_takes_a_glob_of_built_in_names(self):
        tmp = scratch_folder(self)
        json_path = os.path.join(tmp, "report.json")
        status, out, err = run_test(["--scenario", "starttls-4*", "--scenario", "greeting-5?1",
                                     "--json", json_path, "--", PYTHON, "-c", "pass"],
                                    timeout=120)
        self.assertEqual(sorted(verdicts(json_path)), ["greeting-521", "starttls-454"], err)
        status, out, err = run_test(["--scenario", "nope-*", "--", PYTHON, "-c", "pass"],
                                    timeout=60)
        self.assertEqual(status, 2, out + err)
        self.assertIn("--scenario nope-*: matches no built-in scenario (see smtpfault list)", err)
        # One pointer, not two.
        self.assertNotIn("(see smtpfault test --help)", err)

    def test_a_scenario_without_expectations_says_what_its_pass_means(self):
        # "all expectations held" was said of a scenario that states none.
        tmp = scratch_folder(self)
        scenario = os.path.join(tmp, "bare.lua")
        with open(scenario, "w") as f:
            f.write("function on_mail(s, m) end\n")
        mailer = ("import os, smtplib\n"
                  "s = smtplib.SMTP(os.environ['SMTP_HOST'], int(os.environ['SMTP_PORT']))\n"
                  "s.quit()\n")
        status, out, err = run_test(["--scenario", scenario, "--", PYTHON, "-c", mailer],
                                    timeout=60)
        self.assertEqual(status, 0, out + err)
        self.assertIn("PASS    the command succeeded (the scenario states no expectations: only "
                      "its exit status was checked)", out)
        # runs alone says how often, not what to check: the pass says so.
        with open(scenario, "w") as f:
            f.write("expect { runs = 2 }\n")
        status, out, err = run_test(["--scenario", scenario, "--", PYTHON, "-c", mailer],
                                    timeout=60)
        self.assertEqual(status, 0, out + err)
        self.assertIn("PASS    the command succeeded in each of its 2 runs (the scenario states no "
                      "expectations besides runs: only the exit statuses were checked)", out)

    def test_one_file_for_both_reports_is_refused(self):
        # The second report would replace the first without a word.
        tmp = scratch_folder(self)
        status, out, err = run_test(["--scenario", "accept-all", "--junit",
                                     os.path.join(tmp, "report"), "--json",
                                     os.path.join(tmp, ".", "report"), "--", "/bin/true"],
                                    timeout=60)
        self.assertEqual(status, 2, out + err)
        self.assertIn("name the same file: the second report would replace the first", err)

    def test_a_command_that_cannot_be_run_is_an_error_not_a_failing_mailer(self):
        # Else a scenario that expects the mailer to fail would pass with a misspelt command;
        # and it is said once, before any scenario runs, not once per scenario.
        tmp = scratch_folder(self)
        json_path = os.path.join(tmp, "report.json")
        no_line = write_file(tmp, "no-line", "echo hi\n")
        bad_interpreter = write_file(tmp, "bad-interpreter", "#!/no/such/interpreter\necho hi\n")
        windows = write_file(tmp, "windows", "#!/bin/sh\r\necho hi\r\n")
        for script in (no_line, bad_interpreter, windows):
            os.chmod(script, 0o755)
        for command, why in ((os.path.join(tmp, "no-such-mailer"), "No such file or directory"),
                             ("no-such-mailer-in-path", "not found in PATH"),
                             (tmp, "it is a folder, not a program"),
                             (no_line, "Exec format error (no #! line, and not a program)"),
                             (bad_interpreter, "its #! interpreter /no/such/interpreter: No such"
                                               " file or directory"),
                             (windows, "its #! line ends with CR, which the kernel takes as part"
                                       " of the interpreter's name (a file saved with Windows"
                                       " line ends)")):
            status, out, err = run_test(["--json", json_path, "--", command], timeout=60)
            self.assertEqual(status, 2, out + err)
            self.assertIn("smtpfault test: cannot run %s: %s; no scenario was run"
                          % (command, why), err)
            self.assertEqual(out, "")
            # The report asked for says so, as the one error of the run.
            with open(json_path, encoding="utf-8") as f:
                results = json.load(f)["results"]
            self.assertEqual([(r["scenario"], r["verdict"]) for r in results],
                             [("smtpfault test", "ERROR")])
            self.assertIn("cannot run %s: %s" % (command, why), results[0]["reason"])
            os.remove(json_path)

    def test_a_run_refused_before_any_scenario_replaces_the_report_of_an_earlier_run(self):
        # A CI job that publishes the report whatever happened must not show an earlier green.
        tmp = scratch_folder(self)
        junit = os.path.join(tmp, "report.xml")
        status, out, err = run_test(["--scenario", "accept-all", "--junit", junit, "--", PYTHON,
                                     "-c", "pass"], timeout=60)
        self.assertEqual(status, 1, out + err)
        typo = write_file(tmp, "typo.toml", '[test]\nexlude = "x"\n')
        broken = write_file(tmp, "broken.toml", "[test\n")
        # Also a mistake found before the report flags are read: an unknown option, a flag
        # whose value is missing, a configuration file that is wrong or not there.
        for args, why in ((["--scenario", "no-such-scenario"], "unknown scenario"),
                          (["--scenario", "accept-all", "--jobs", "0"], "--jobs"),
                          (["--scenario", "accept-all", "--set", "no_such_key=1"], "no_such_key"),
                          (["--no-such-flag"], "unknown option --no-such-flag"),
                          (["--scenario", "accept-all", "--timeout"], "--timeout needs a value"),
                          (["--config", typo], "unknown key 'test.exlude'"),
                          (["--config", broken], "broken.toml:1:"),
                          (["--config", os.path.join(tmp, "none.toml")], "cannot open file")):
            status, out, err = run_test(args + ["--junit", junit, "--", PYTHON, "-c", "pass"],
                                        timeout=60)
            self.assertEqual(status, 2, out + err)
            suite = ElementTree.parse(junit).getroot().find("testsuite")
            self.assertEqual((suite.get("tests"), suite.get("errors")), ("1", "1"), args)
            error = suite.find("testcase/error")
            self.assertIn(why, error.get("message"))
            # A type groups results: not a path, a flag or a file position.
            self.assertEqual(error.get("type"), "error", args)
            # No seed was chosen: none is shown as if it had been (not 0).
            self.assertIsNone(suite.find("properties"), args)

    def test_a_refused_run_keeps_the_seed_it_was_given_and_shows_none_otherwise(self):
        tmp = scratch_folder(self)
        json_path = os.path.join(tmp, "report.json")
        for args, seed in ((["--seed", "77", "--scenario", "no-such-scenario"], 77),
                           (["--scenario", "no-such-scenario"], None)):
            status, out, err = run_test(args + ["--json", json_path, "--", PYTHON, "-c", "pass"],
                                        timeout=60)
            self.assertEqual(status, 2, out + err)
            with open(json_path, encoding="utf-8") as f:
                self.assertEqual(json.load(f)["seed"], seed, args)

    def test_a_run_killed_before_it_writes_its_reports_leaves_no_earlier_report(self):
        # Killed while it reads the standard input it shares: the report of an earlier run is
        # gone, not left to stand for this one.
        tmp = scratch_folder(self)
        junit = write_file(tmp, "report.xml", "<testsuites/>")
        p = subprocess.Popen([binary_path(), "test", "--scenario", "accept-all", "--junit", junit,
                              "--", PYTHON, "-c", "pass"], env=server_environment(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(1)  # well inside the 3 s it waits for a silent pipe
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
        self.assertFalse(os.path.exists(junit))

    def test_a_mailer_that_never_connects_passes_no_scenario(self):
        # These scenarios expect the mailer to fail and deliver nothing; one that fails before it
        # even connects (a misspelt command inside a shell, a wrong port) was never exercised.
        tmp = scratch_folder(self)
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
            # Exit 0 with nothing sent, in every scenario: said once for the run.
            with open(json_path, encoding="utf-8") as f:
                silent = [n for n in json.load(f)["notes"] if "exited 0 in" in n]
            if mailer == ["/bin/true"]:
                self.assertEqual(silent, ["the command exited 0 in 4 failed scenarios where "
                                          "nothing was delivered (" + ", ".join(names) + "): it "
                                          "reports success whatever happens, so whatever runs it "
                                          "cannot tell a lost message from a sent one"])
            else:
                self.assertEqual(silent, [], mailer)


if __name__ == "__main__":
    unittest.main(verbosity=2)
